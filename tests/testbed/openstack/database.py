"""The services' databases: built once (schema sync, keystone bootstrap and catalog), then copied per run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import catalog, configs, infra, services
from .install import file_lock
from .processes import Started, run_checked, stop_processes
from .settings import PASSWORD, REGION, Layout, cache_root, database_url, keystone_url, snapshot_key
from .timing import StepTimer

COMPLETE_MARKER = ".complete"


def snapshot_dir() -> Path:
    """Where the prepared MariaDB data folder and keystone keys are kept between runs."""
    return cache_root() / f"db-snapshot-{snapshot_key()}"


def _tool(venv: Path, name: str) -> str:
    """A console script of the venv."""
    return str(venv / "bin" / name)


def _sync_keystone(layout: Layout, venv: Path) -> None:
    """Keystone's schema, keys and admin account with the identity endpoint."""
    log = layout.logs / "sync-keystone.log"
    base = [_tool(venv, "keystone-manage"), "--config-file", str(layout.etc / "keystone" / "keystone.conf")]
    owner = ["--keystone-user", "root", "--keystone-group", "root"]
    run_checked("keystone-manage db_sync", [*base, "db_sync"], log)
    run_checked("keystone-manage fernet_setup", [*base, "fernet_setup", *owner], log)
    run_checked("keystone-manage credential_setup", [*base, "credential_setup", *owner], log)
    url = keystone_url()
    run_checked(
        "keystone-manage bootstrap",
        [
            *base,
            "bootstrap",
            "--bootstrap-password",
            PASSWORD,
            "--bootstrap-region-id",
            REGION,
            "--bootstrap-admin-url",
            url,
            "--bootstrap-internal-url",
            url,
            "--bootstrap-public-url",
            url,
        ],
        log,
    )


def _sync_placement(layout: Layout, venv: Path) -> None:
    """Placement's schema."""
    run_checked(
        "placement-manage db sync",
        [
            _tool(venv, "placement-manage"),
            "--config-file",
            str(layout.etc / "placement" / "placement.conf"),
            "db",
            "sync",
        ],
        layout.logs / "sync-placement.log",
    )


def _sync_glance(layout: Layout, venv: Path) -> None:
    """Glance's schema."""
    run_checked(
        "glance-manage db_sync",
        [_tool(venv, "glance-manage"), "--config-file", str(layout.etc / "glance" / "glance-api.conf"), "db_sync"],
        layout.logs / "sync-glance.log",
    )


def _sync_nova(layout: Layout, venv: Path) -> None:
    """Nova's API database, cell0 and cell1 mappings, and the cell databases."""
    log = layout.logs / "sync-nova.log"
    base = [_tool(venv, "nova-manage"), *services.nova_config_args(layout)]
    run_checked("nova-manage api_db sync", [*base, "api_db", "sync"], log)
    run_checked(
        "nova-manage cell_v2 map_cell0",
        [*base, "cell_v2", "map_cell0", "--database_connection", database_url("nova_cell0")],
        log,
    )
    run_checked("nova-manage cell_v2 create_cell", [*base, "cell_v2", "create_cell", "--name", "cell1"], log)
    run_checked("nova-manage db sync", [*base, "db", "sync"], log)


def _sync_neutron(layout: Layout, venv: Path) -> None:
    """Neutron's schema with every installed migration branch."""
    run_checked(
        "neutron-db-manage upgrade head",
        [_tool(venv, "neutron-db-manage"), *configs.neutron_config_args(layout), "upgrade", "head"],
        layout.logs / "sync-neutron.log",
    )


SCHEMA_SYNCS: tuple[Callable[[Layout, Path], None], ...] = (
    _sync_neutron,
    _sync_nova,
    _sync_keystone,
    _sync_placement,
    _sync_glance,
)


def sync_all_schemas(layout: Layout, venv: Path) -> None:
    """Run the five services' schema syncs side by side; re-raise the first failure."""
    with ThreadPoolExecutor(max_workers=len(SCHEMA_SYNCS)) as pool:
        futures = [pool.submit(sync, layout, venv) for sync in SCHEMA_SYNCS]
        for future in futures:
            future.result()


def _register_catalog(layout: Layout, venv: Path) -> None:
    """Start keystone just long enough to create the service users and endpoints."""
    keystone = services.start_api(services.KEYSTONE, layout, venv)
    try:
        services.wait_for_api(services.KEYSTONE, keystone)
        catalog.register_services()
    finally:
        stop_processes([keystone], grace_s=10)


def _prepare_in(layout: Layout, venv: Path, timer: StepTimer) -> None:
    """Create, sync and bootstrap every database in a scratch layout."""
    configs.write_all(layout, venv, {})
    with timer.step("database snapshot: mariadb-install-db"):
        infra.initialize_mariadb_datadir(layout, layout.logs / "mariadb-setup.log")
    mariadb: Started = infra.start_mariadb(layout)
    try:
        infra.wait_for_mariadb(mariadb, layout)
        infra.create_databases(layout, layout.logs / "mariadb-setup.log")
        with timer.step("database snapshot: schema syncs of keystone, glance, placement, nova, neutron"):
            sync_all_schemas(layout, venv)
        with timer.step("database snapshot: keystone catalog"):
            _register_catalog(layout, venv)
    finally:
        stop_processes([mariadb], grace_s=60)


def ensure_snapshot(venv: Path, timer: StepTimer) -> Path:
    """Build the database snapshot unless a complete one for these versions and settings exists."""
    snapshot = snapshot_dir()
    if (snapshot / COMPLETE_MARKER).exists():
        return snapshot
    with file_lock(cache_root() / "snapshot.lock"):
        if (snapshot / COMPLETE_MARKER).exists():
            return snapshot
        scratch = snapshot.with_name(snapshot.name + ".building")
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(snapshot, ignore_errors=True)
        layout = Layout(scratch)
        _prepare_in(layout, venv, timer)
        snapshot.mkdir(parents=True)
        shutil.move(layout.mysql, snapshot / "mysql")
        shutil.move(layout.keystone_keys, snapshot / "keystone")
        shutil.rmtree(scratch, ignore_errors=True)
        (snapshot / COMPLETE_MARKER).write_text(snapshot_key() + "\n")
    return snapshot


def restore_snapshot(snapshot: Path, layout: Layout) -> None:
    """Copy the prepared databases and keystone keys into a run."""
    shutil.rmtree(layout.mysql, ignore_errors=True)
    shutil.rmtree(layout.keystone_keys, ignore_errors=True)
    shutil.copytree(snapshot / "mysql", layout.mysql, symlinks=True)
    shutil.copytree(snapshot / "keystone", layout.keystone_keys, symlinks=True)
