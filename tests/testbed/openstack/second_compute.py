"""A second nova-compute for the test cloud: the PC that `affordml add-node` brings in.

It runs beside the first one with its own host name, state folder (nova keeps the compute node's uuid there) and
the nova-compute.conf affordml rendered for that PC (kolla's nova/<host>/nova-compute.conf), reporting that PC's
GPUs through the same fake driver. It is started inside a test and stopped (its service deleted) at the end, so
the session's other tests see the one-compute cloud they expect."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from . import infra, services
from .configs import render_ini
from .fake_host import HOST_PHYS_BITS, FakeFunction
from .processes import run_checked, start_background, stop_processes, wait_until
from .settings import Layout

READY_TIMEOUT_S = 240


@contextmanager
def second_compute(run_dir: Path, host: str, nova_compute_conf: str, functions: Sequence[FakeFunction]) -> Iterator:
    """nova-compute as `host`, registered and mapped into cell1 while the block runs."""
    from .install import venv_dir

    layout, venv = Layout(run_dir), venv_dir()
    state = layout.state / f"nova-{host}"
    for folder in ("instances", "lock"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    own = layout.etc / "nova" / f"{host}-own.conf"
    own.write_text(
        render_ini(
            {
                "DEFAULT": {"host": host, "state_path": str(state), "instances_path": str(state / "instances")},
                "oslo_concurrency": {"lock_path": str(state / "lock")},
            }
        )
    )
    pci = layout.etc / "nova" / f"{host}-nova-compute.conf"
    pci.write_text(nova_compute_conf)
    command = [str(venv / "bin" / "nova-compute"), *services.nova_config_args(layout)]
    command += ["--config-file", str(pci), "--config-file", str(own)]
    env = services.service_environment(
        {
            services.FAKE_PCI_VARIABLE: json.dumps([f.nova_record() for f in functions]),
            services.FAKE_PHYS_BITS_VARIABLE: str(HOST_PHYS_BITS),
        }
    )
    process = start_background(f"nova-compute-{host}", command, layout.logs / f"nova-compute-{host}.log", env, run_dir)
    try:
        _wait_registered(layout, venv, host, process)
        yield process
    finally:
        stop_processes([process], grace_s=10)


def _wait_registered(layout: Layout, venv: Path, host: str, process) -> None:
    def recorded() -> bool:
        answer = infra.mariadb_query(layout, f"SELECT COUNT(*) FROM nova.compute_nodes WHERE host = '{host}'")
        return answer.strip() not in ("", "0")

    def mapped() -> bool:
        return host in infra.mariadb_query(layout, "SELECT host FROM nova_api.host_mappings").split()

    wait_until(f"{host}'s compute node record", recorded, READY_TIMEOUT_S, watched=process, interval_s=0.5)
    if not mapped():
        run_checked(
            "nova-manage cell_v2 discover_hosts",
            [str(venv / "bin" / "nova-manage"), *services.nova_config_args(layout), "cell_v2", "discover_hosts"],
            layout.logs / "nova-manage.log",
            env=services.service_environment(),
            timeout_s=120,
        )
    wait_until(f"{host}'s host mapping", mapped, READY_TIMEOUT_S, watched=process, interval_s=0.5)
