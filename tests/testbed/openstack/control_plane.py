"""Bring-up, status and teardown of the whole control plane, with a state file that records every PID."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import catalog, configs, database, fake_host, infra, install, services
from .clouds import write_clouds_yaml
from .fake_host import FakeFunction
from .processes import (
    ServiceFailed,
    Started,
    group_members,
    http_answers,
    is_running,
    port_open,
    run_checked,
    stop_processes,
    wait_until,
)
from .settings import (
    ADMIN_CLOUD_NAME,
    COMPUTE_HOST,
    PORTS,
    ExternalNetwork,
    Layout,
    cache_root,
    default_run_dir,
)
from .timing import Report, StepTimer, print_report

INFRA_NAMES = ("epmd", "mariadb", "rabbitmq")
COMPUTE_READY_TIMEOUT_S = 240
SERVICE_REGISTER_TIMEOUT_S = 180
OPENSTACK_STOP_GRACE_S = 8
INFRA_STOP_GRACE_S = 60


def current_run_pointer() -> Path:
    """The file naming the run folder of the control plane that is up, if any."""
    return cache_root() / "current-run"


@dataclass
class ControlPlane:
    """One running control plane: its folders, venv, the PC's PCI functions, processes and public network."""

    layout: Layout
    venv: Path
    functions: tuple[FakeFunction, ...] = ()
    tracked_gpus: int = 0  # the GPUs affordml's device_spec offers nova
    processes: list[Started] = field(default_factory=list)
    external_network: ExternalNetwork | None = None
    owner: str = "cli"

    @property
    def clouds_yaml(self) -> Path:
        """The clouds.yaml with the admin cloud."""
        return self.layout.clouds_yaml

    @property
    def cloud_name(self) -> str:
        """The admin cloud's name in clouds.yaml."""
        return ADMIN_CLOUD_NAME

    def track(self, process: Started) -> Started:
        """Remember a started process and save the state file at once (so that `down` can find it)."""
        self.processes.append(process)
        self.save()
        return process

    def process(self, name: str) -> Started:
        """A tracked process by name."""
        for process in self.processes:
            if process.name == name:
                return process
        raise KeyError(name)

    def save(self) -> None:
        """Write the state file."""
        record = {
            "run_dir": str(self.layout.root),
            "venv": str(self.venv),
            "owner": self.owner,
            "functions": [asdict(function) for function in self.functions],
            "tracked_gpus": self.tracked_gpus,
            "processes": [process.to_json() for process in self.processes],
            "external_network": asdict(self.external_network) if self.external_network else None,
        }
        self.layout.root.mkdir(parents=True, exist_ok=True)
        self.layout.state_file.write_text(json.dumps(record, indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> ControlPlane | None:
        """Read a run's state file, or None when there is none."""
        layout = Layout(run_dir)
        if not layout.state_file.exists():
            return None
        record = json.loads(layout.state_file.read_text())
        network = record.get("external_network")
        return cls(
            layout=layout,
            venv=Path(record["venv"]),
            functions=tuple(FakeFunction(**function) for function in record.get("functions", [])),
            tracked_gpus=int(record.get("tracked_gpus", 0)),
            processes=[Started.from_json(process) for process in record["processes"]],
            external_network=ExternalNetwork(**network) if network else None,
            owner=str(record.get("owner", "cli")),
        )

    def alive(self) -> dict[str, bool]:
        """Each tracked process and whether it still runs."""
        return {process.name: is_running(process) for process in self.processes}

    def memory_mib(self) -> float:
        """Memory of every process of the control plane in MiB (proportional set size: shared pages split)."""
        total_kib = 0
        for process in self.processes:
            for pid in group_members(process.pid):
                total_kib += _pss_kib(pid)
        return total_kib / 1024


def _pss_kib(pid: int) -> int:
    """Proportional set size of one process in KiB (0 if it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def recorded_control_plane() -> ControlPlane | None:
    """The control plane named by the current-run pointer, running or not."""
    pointer = current_run_pointer()
    return ControlPlane.load(Path(pointer.read_text().strip())) if pointer.exists() else None


def running_control_plane(owner: str | None = None) -> ControlPlane | None:
    """The control plane named by the current-run pointer if every one of its processes runs (and owner fits)."""
    plane = recorded_control_plane()
    if plane is None or not plane.processes or not all(plane.alive().values()):
        return None
    if owner is not None and plane.owner != owner:
        return None
    return plane


@contextmanager
def exclusive_use(wait_s: float, report: Report = print_report) -> Iterator[None]:
    """Hold the machine-wide control plane lock (its ports are fixed), waiting up to wait_s for it."""
    path = cache_root() / "control-plane.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ServiceFailed(f"another test session holds {path} (its control plane is in use)") from None
                if not told:
                    report(f"[openstack testbed] waiting up to {wait_s:.0f}s for another session's control plane")
                    told = True
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ports_in_use() -> list[str]:
    """Our ports on 127.0.0.1 that something already listens on."""
    return [f"{name} {port}" for name, port in asdict(PORTS).items() if name != "rabbitmq_dist" and port_open(port)]


def _check_machine() -> None:
    """Refuse to start where the control plane cannot run, or where its ports are taken."""
    if os.geteuid() != 0:
        raise install.PrerequisiteMissing("the OpenStack test control plane needs root")
    busy = _ports_in_use()
    if busy:
        hint = ""
        if current_run_pointer().exists():
            hint = (
                f" (a control plane from {current_run_pointer().read_text().strip()} may still run:"
                " python3 -m tests.testbed.openstack down)"
            )
        raise ServiceFailed(f"ports already in use on 127.0.0.1: {', '.join(busy)}{hint}")


def _fresh_layout(run_dir: Path) -> Layout:
    """An empty run folder (logs of an older run in it are dropped)."""
    layout = Layout(run_dir)
    for folder in (layout.etc, layout.state, layout.logs, layout.mysql, layout.rabbitmq):
        shutil.rmtree(folder, ignore_errors=True)
    layout.state_file.unlink(missing_ok=True)
    layout.root.mkdir(parents=True, exist_ok=True)
    return layout


def _start_infra(plane: ControlPlane) -> Started:
    """Start epmd, MariaDB and RabbitMQ; wait for MariaDB only and return RabbitMQ (it boots slower)."""
    layout = plane.layout
    epmd = plane.track(infra.start_epmd(layout))
    infra.wait_for_epmd(epmd)
    mariadb = plane.track(infra.start_mariadb(layout))
    rabbitmq = plane.track(infra.start_rabbitmq(layout))
    infra.wait_for_mariadb(mariadb, layout)
    return rabbitmq


def _start_openstack(plane: ControlPlane, rabbitmq: Started, timer: StepTimer) -> None:
    """Start the APIs and nova's daemons together, then nova-compute once its peers are there."""
    layout, venv = plane.layout, plane.venv
    with timer.step("start keystone, placement, glance, neutron, nova-api, conductor, scheduler"):
        apis = [
            (api, plane.track(services.start_api(api, layout, venv)))
            for api in (services.KEYSTONE, *services.APIS_AFTER_KEYSTONE)
        ]
        daemons = [plane.track(services.start_nova_daemon(name, layout, venv)) for name in services.NOVA_DAEMONS]
        infra.wait_for_rabbitmq(rabbitmq)
        for api, process in apis[:2]:
            services.wait_for_api(api, process)
        wait_until(
            "nova-conductor to register",
            lambda: _nova_service_registered(layout, "nova-conductor"),
            SERVICE_REGISTER_TIMEOUT_S,
            watched=daemons[0],
        )
        compute = plane.track(services.start_nova_compute(layout, venv, plane.functions, fake_host.HOST_PHYS_BITS))
        for api, process in apis[2:]:
            services.wait_for_api(api, process)
    with timer.step("nova-compute registered with the PC's GPUs"):
        _wait_for_compute(plane, compute)


def _nova_service_registered(layout: Layout, binary: str) -> bool:
    """Whether a nova service has written its row in cell1's services table."""
    answer = infra.mariadb_query(layout, f"SELECT COUNT(*) FROM nova.services WHERE `binary` = '{binary}'")
    return answer.strip() not in ("", "0")


def _compute_node_recorded(layout: Layout) -> bool:
    """Whether nova-compute has created its compute node record."""
    answer = infra.mariadb_query(layout, f"SELECT COUNT(*) FROM nova.compute_nodes WHERE host = '{COMPUTE_HOST}'")
    return answer.strip() not in ("", "0")


def tracked_pci_devices(layout: Layout) -> list[dict[str, str]]:
    """The PCI devices nova's PCI tracker holds for the test bed's compute host (production nova does not report
    them to placement, and no API shows them): address, vendor_id, product_id, dev_type, status and instance_uuid
    (empty when free). A second compute service (the add-node test) reports its own rows; they are not these."""
    columns = ("address", "vendor_id", "product_id", "dev_type", "status", "instance_uuid")
    answer = infra.mariadb_query(
        layout,
        f"SELECT {', '.join('d.' + c for c in columns)} FROM nova.pci_devices d"
        " JOIN nova.compute_nodes c ON d.compute_node_id = c.id"
        f" WHERE d.deleted = 0 AND c.deleted = 0 AND c.host = '{COMPUTE_HOST}' ORDER BY d.address",
    )
    rows = [dict(zip(columns, line.split("\t"), strict=True)) for line in answer.splitlines() if line.strip()]
    return [{k: ("" if v == "NULL" else v) for k, v in row.items()} for row in rows]


def _host_mapped(layout: Layout) -> bool:
    """Whether the compute host is mapped into cell1 (else nothing can be scheduled to it)."""
    answer = infra.mariadb_query(layout, "SELECT host FROM nova_api.host_mappings")
    return COMPUTE_HOST in answer.split()


def _map_compute_host(plane: ControlPlane) -> None:
    """Map the new compute host into cell1 now, instead of waiting for the scheduler's periodic discovery."""
    command = [
        str(plane.venv / "bin" / "nova-manage"),
        *services.nova_config_args(plane.layout),
        "cell_v2",
        "discover_hosts",
    ]
    run_checked(
        "nova-manage cell_v2 discover_hosts",
        command,
        plane.layout.logs / "nova-manage.log",
        env=services.service_environment(),
        timeout_s=120,
    )


def _wait_for_compute(plane: ControlPlane, compute: Started) -> None:
    """Wait for the compute node record, map its host, and wait until nova tracks every planned GPU."""
    layout, wanted = plane.layout, plane.tracked_gpus
    wait_until(
        "nova-compute's compute node record",
        lambda: _compute_node_recorded(layout),
        COMPUTE_READY_TIMEOUT_S,
        watched=compute,
        interval_s=0.5,
    )
    if not _host_mapped(layout):
        _map_compute_host(plane)
    wait_until(
        "nova-compute's host mapping",
        lambda: _host_mapped(layout),
        COMPUTE_READY_TIMEOUT_S,
        watched=compute,
        interval_s=0.5,
    )
    wait_until(
        f"{wanted} GPUs in nova's PCI tracker",
        lambda: len(tracked_pci_devices(layout)) == wanted,
        COMPUTE_READY_TIMEOUT_S,
        watched=compute,
        interval_s=0.5,
    )


def bring_up(
    run_dir: Path | None = None,
    report: Report = print_report,
    with_public_network: bool = True,
    owner: str = "cli",
) -> ControlPlane:
    """Install what is missing, start every service on 127.0.0.1 and return the running control plane."""
    timer = StepTimer(report)
    _check_machine()
    layout = _fresh_layout(run_dir or default_run_dir())
    install_log = cache_root() / f"install-{install.venv_dir().name}.log"
    with timer.step("Debian packages mariadb-server, rabbitmq-server"):
        install.ensure_debian_packages(install_log)
    with timer.step(f"services venv {install.venv_dir()}"):
        venv = install.ensure_venv(install_log)
    with timer.step("fake GPU driver and ML2 binding driver"):
        install.install_plugins(venv)
    snapshot = database.ensure_snapshot(venv, timer)
    with timer.step("affordml's plan and nova files for the test PC"):
        nova_files = fake_host.rendered_nova_files()
        plane = ControlPlane(
            layout=layout,
            venv=venv,
            functions=tuple(fake_host.fake_functions()),
            tracked_gpus=len(fake_host.plan().nova_device_specs),
            owner=owner,
        )
    current_run_pointer().write_text(str(layout.root) + "\n")
    try:
        with timer.step("configs and database copy"):
            configs.write_all(layout, venv, nova_files)
            database.restore_snapshot(snapshot, layout)
        with timer.step("epmd, mariadb (rabbitmq boots on)"):
            rabbitmq = _start_infra(plane)
        _start_openstack(plane, rabbitmq, timer)
        if with_public_network:
            with timer.step("public provider network"):
                plane.external_network = catalog.create_public_network()
        write_clouds_yaml(layout.clouds_yaml)
        plane.save()
    except BaseException:
        report("[openstack testbed] bring-up failed: stopping what was started")
        stop(plane, report)
        raise
    report(timer.summary(f"control plane up ({plane.memory_mib():.0f} MiB PSS, run folder {layout.root})"))
    return plane


def stop(plane: ControlPlane, report: Report = print_report) -> list[str]:
    """Stop every process of the control plane by PID; return the names that needed SIGKILL."""
    timer = StepTimer(report)
    openstack = [p for p in plane.processes if p.name not in INFRA_NAMES]
    brokers = [p for p in plane.processes if p.name in ("mariadb", "rabbitmq")]
    mappers = [p for p in plane.processes if p.name == "epmd"]
    killed: list[str] = []
    with timer.step("stop OpenStack services"):
        killed += stop_processes(reversed(openstack), OPENSTACK_STOP_GRACE_S)
    with timer.step("stop mariadb and rabbitmq"):
        killed += stop_processes(brokers, INFRA_STOP_GRACE_S)
        killed += stop_processes(mappers, 10)
    if killed:
        report(f"[openstack testbed] needed SIGKILL: {', '.join(killed)}")
    _forget(plane)
    report(timer.summary("control plane stopped"))
    return killed


def _forget(plane: ControlPlane) -> None:
    """Drop the run's bulky data and the pointers to it; keep configs and logs for reading."""
    shutil.rmtree(plane.layout.mysql, ignore_errors=True)
    shutil.rmtree(plane.layout.rabbitmq / "mnesia", ignore_errors=True)
    plane.layout.state_file.unlink(missing_ok=True)
    pointer = current_run_pointer()
    if pointer.exists() and pointer.read_text().strip() == str(plane.layout.root):
        pointer.unlink()


def stop_run(run_dir: Path | None = None, report: Report = print_report) -> bool:
    """Stop the control plane of a run folder (default: the current one); False when none was recorded."""
    if run_dir is None:
        pointer = current_run_pointer()
        run_dir = Path(pointer.read_text().strip()) if pointer.exists() else default_run_dir()
    plane = ControlPlane.load(run_dir)
    if plane is None:
        current_run_pointer().unlink(missing_ok=True)
        return False
    stop(plane, report)
    return True


def stop_abandoned_test_plane(report: Report = print_report) -> None:
    """Stop a plane that a test session started and never stopped (call only while holding exclusive_use)."""
    plane = recorded_control_plane()
    if plane is not None and plane.owner == "pytest":
        report(f"[openstack testbed] stopping a control plane a test session left behind in {plane.layout.root}")
        stop(plane, report)


def describe(plane: ControlPlane) -> list[str]:
    """Lines telling which processes run and which APIs answer."""
    urls = {api.name: api.url for api in (services.KEYSTONE, *services.APIS_AFTER_KEYSTONE)}
    lines = [f"run folder {plane.layout.root}", f"clouds.yaml {plane.clouds_yaml} (cloud '{plane.cloud_name}')"]
    for process in plane.processes:
        state = "running" if is_running(process) else "NOT RUNNING"
        answer = ""
        if process.name in urls:
            answer = ", answers" if http_answers(urls[process.name]) else ", does not answer"
        lines.append(f"  {process.name:15} pid {process.pid:<8} {state}{answer}  log {process.log}")
    lines.append(
        f"memory (PSS) {plane.memory_mib():.0f} MiB; PCI functions reported: "
        + ", ".join(f"{f.address} {f.vendor_id}:{f.product_id} {f.dev_type}" for f in plane.functions)
    )
    return lines


def require_running(plane: ControlPlane | None) -> ControlPlane:
    """The plane itself, or an error saying that none runs."""
    if plane is None:
        raise ServiceFailed("no control plane is running")
    return plane
