"""Our own MariaDB and RabbitMQ instances (Debian's binaries, started by hand on 127.0.0.1, data in the run)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .processes import ServiceFailed, Started, port_open, run_checked, start_background, wait_until
from .settings import DATABASES, DB_USER, HOST, PASSWORD, PORTS, Layout

MARIADB_SERVER = "/usr/sbin/mariadbd"
MARIADB_INSTALL_DB = "mariadb-install-db"
MARIADB_CLIENT = "mariadb"
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD_CANDIDATES = ("/usr/bin/epmd", "/usr/lib/erlang/bin/epmd")


def _require(path: str) -> str:
    """The full path of a program we need, or a clear error."""
    found = shutil.which(path) or (path if os.access(path, os.X_OK) else None)
    if not found:
        raise ServiceFailed(f"{path} is missing: install the Debian packages mariadb-server and rabbitmq-server")
    return found


def initialize_mariadb_datadir(layout: Layout, log: Path) -> None:
    """Create an empty MariaDB data folder for this run."""
    layout.mysql.mkdir(parents=True, exist_ok=True)
    command = [
        _require(MARIADB_INSTALL_DB),
        "--no-defaults",
        f"--datadir={layout.mysql}",
        "--user=root",
        "--skip-test-db",
        "--auth-root-authentication-method=socket",
    ]
    run_checked("mariadb-install-db", command, log, timeout_s=180)


def start_mariadb(layout: Layout) -> Started:
    """Start mariadbd on 127.0.0.1 with the run's data folder, tuned for a throwaway test database."""
    command = [
        _require(MARIADB_SERVER),
        "--no-defaults",
        f"--datadir={layout.mysql}",
        "--user=root",
        f"--socket={layout.mysql_socket}",
        f"--pid-file={layout.root / 'mysqld.pid'}",
        f"--port={PORTS.mariadb}",
        f"--bind-address={HOST}",
        "--skip-name-resolve",
        "--skip-log-bin",
        "--performance-schema=OFF",
        "--max-connections=1000",
        "--innodb-buffer-pool-size=128M",
        "--innodb-log-file-size=32M",
        "--innodb-flush-log-at-trx-commit=0",
        "--innodb-doublewrite=0",
        "--sync-binlog=0",
        "--character-set-server=utf8mb3",
        "--collation-server=utf8mb3_general_ci",
    ]
    return start_background("mariadb", command, layout.logs / "mariadb.log")


def wait_for_mariadb(process: Started, layout: Layout) -> None:
    """Wait until MariaDB accepts connections on its socket and its port."""
    wait_until(
        "MariaDB to listen",
        lambda: layout.mysql_socket.exists() and port_open(PORTS.mariadb),
        timeout_s=90,
        watched=process,
    )


def mariadb_sql(layout: Layout, sql: str, log: Path) -> None:
    """Run SQL as MariaDB's root over the run's socket."""
    command = [_require(MARIADB_CLIENT), "--no-defaults", f"--socket={layout.mysql_socket}", "-uroot"]
    run_checked("mariadb (SQL)", command, log, input_text=sql, timeout_s=120)


def mariadb_query(layout: Layout, sql: str) -> str:
    """Run a query as root over the socket and return its tab-separated output."""
    command = [
        _require(MARIADB_CLIENT),
        "--no-defaults",
        f"--socket={layout.mysql_socket}",
        "-uroot",
        "--batch",
        "--skip-column-names",
        "-e",
        sql,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    return result.stdout if result.returncode == 0 else ""


def create_databases(layout: Layout, log: Path) -> None:
    """Create the services' databases and the one account they share, reachable from 127.0.0.1 only."""
    statements = [f"CREATE DATABASE IF NOT EXISTS {name};" for name in DATABASES]
    statements += [
        f"CREATE USER IF NOT EXISTS '{DB_USER}'@'{HOST}' IDENTIFIED BY '{PASSWORD}';",
        f"GRANT ALL PRIVILEGES ON *.* TO '{DB_USER}'@'{HOST}';",
        "FLUSH PRIVILEGES;",
    ]
    mariadb_sql(layout, "\n".join(statements), log)


def _epmd_program() -> str:
    """Erlang's port mapper daemon."""
    for candidate in EPMD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return _require("epmd")


def start_epmd(layout: Layout) -> Started:
    """Start a private Erlang port mapper on 127.0.0.1 (in the foreground, so that we own its PID)."""
    command = [_epmd_program(), "-address", HOST, "-port", str(PORTS.epmd)]
    return start_background("epmd", command, layout.logs / "epmd.log")


def rabbitmq_environment(layout: Layout) -> dict[str, str]:
    """Environment that keeps RabbitMQ's node, data, logs, cookie and ports inside the run."""
    base = layout.rabbitmq
    env = {key: value for key, value in os.environ.items() if not key.startswith(("RABBITMQ_", "ERL_"))}
    env.update(
        {
            "HOME": str(base),
            "RABBITMQ_NODENAME": "affordml@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(PORTS.rabbitmq),
            "RABBITMQ_DIST_PORT": str(PORTS.rabbitmq_dist),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": HOST,
            "ERL_EPMD_PORT": str(PORTS.epmd),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
        }
    )
    return env


def write_rabbitmq_config(layout: Layout) -> None:
    """RabbitMQ's config: loopback only, no plugins, tolerant of a small disk."""
    base = layout.rabbitmq
    for folder in (base, base / "mnesia", base / "log"):
        folder.mkdir(parents=True, exist_ok=True)
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = {HOST}:{PORTS.rabbitmq}\n"
        "loopback_users.guest = true\n"
        "disk_free_limit.absolute = 50MB\n"
        "vm_memory_high_watermark.relative = 0.4\n"
    )
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq-env.conf").write_text("# all settings come from the environment\n")


def start_rabbitmq(layout: Layout) -> Started:
    """Start RabbitMQ in the foreground as root with the run's settings."""
    write_rabbitmq_config(layout)
    return start_background(
        "rabbitmq",
        [_require(RABBITMQ_SERVER)],
        layout.logs / "rabbitmq.log",
        env=rabbitmq_environment(layout),
        cwd=layout.rabbitmq,
    )


def wait_for_rabbitmq(process: Started) -> None:
    """Wait until RabbitMQ accepts AMQP connections."""
    wait_until("RabbitMQ to listen", lambda: port_open(PORTS.rabbitmq), timeout_s=120, watched=process)


def wait_for_epmd(process: Started) -> None:
    """Wait until our port mapper listens."""
    wait_until("epmd to listen", lambda: port_open(PORTS.epmd), timeout_s=30, watched=process)
