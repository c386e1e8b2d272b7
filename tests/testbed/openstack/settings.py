"""Fixed facts of the test control plane: versions, addresses, ports and secrets (its PC: fake_host.py)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
REGION = "RegionOne"
PASSWORD = "affordml-testbed"
DB_USER = "openstack"
ADMIN_CLOUD_NAME = "admin"

# OpenStack 2026.1 (Gazpacho): the release kolla-ansible 22.x deploys (affordml/versions.yaml pins it).
SERVICE_RELEASES = {
    "keystone": "29.1.0",
    "glance": "32.0.0",
    "openstack-placement": "15.0.0",
    "nova": "33.0.2",
    "neutron": "28.0.2",
}
EXTRA_REQUIREMENTS = ("PyMySQL", "gunicorn")
CONSTRAINTS_FILE = Path(__file__).with_name("constraints.txt")
PLUGIN_SOURCE_DIR = Path(__file__).with_name("plugin_src")
WSGI_SERVE_SCRIPT = Path(__file__).with_name("wsgi_serve.py")

DEBIAN_PACKAGES = ("mariadb-server", "rabbitmq-server")
DATABASES = ("keystone", "glance", "placement", "nova_api", "nova", "nova_cell0", "neutron")

# Bump when the way the databases are prepared changes, so that an old snapshot is not reused.
DATABASE_SNAPSHOT_REVISION = "2"

PUBLIC_NETWORK_NAME = "public"
PUBLIC_PHYSNET = "public"
# A second, unused flat physnet (kolla names its provider physnet so) where affordml may create its own network.
PLATFORM_PHYSNET = "physnet1"
PUBLIC_CIDR = "203.0.113.0/24"
PUBLIC_GATEWAY = "203.0.113.1"
PUBLIC_POOL = ("203.0.113.10", "203.0.113.250")

COMPUTE_HOST = "affordml-compute"


@dataclass(frozen=True)
class Ports:
    """TCP ports on 127.0.0.1, one per listening service."""

    keystone: int = 5000
    glance: int = 9292
    placement: int = 8778
    nova: int = 8774
    neutron: int = 9696
    mariadb: int = 13306
    rabbitmq: int = 15673
    rabbitmq_dist: int = 35673
    epmd: int = 14369


PORTS = Ports()


@dataclass(frozen=True)
class ExternalNetwork:
    """The admin-owned flat provider network that stands for the outside world."""

    name: str
    network_id: str
    subnet_id: str
    cidr: str
    gateway_ip: str


@dataclass
class Layout:
    """Where one run of the control plane keeps its configs, state, logs and databases."""

    root: Path
    etc: Path = field(init=False)
    state: Path = field(init=False)
    logs: Path = field(init=False)
    mysql: Path = field(init=False)
    rabbitmq: Path = field(init=False)

    def __post_init__(self) -> None:
        """Derive every folder from the root."""
        self.root = self.root.resolve()
        self.etc = self.root / "etc"
        self.state = self.root / "state"
        self.logs = self.root / "logs"
        self.mysql = self.root / "mysql"
        self.rabbitmq = self.root / "rabbitmq"

    @property
    def state_file(self) -> Path:
        """The JSON record of what this run started."""
        return self.root / "control-plane.json"

    @property
    def clouds_yaml(self) -> Path:
        """The clouds.yaml written for this run."""
        return self.root / "clouds.yaml"

    @property
    def mysql_socket(self) -> Path:
        """MariaDB's unix socket for this run."""
        return self.root / "mysqld.sock"

    @property
    def keystone_keys(self) -> Path:
        """Keystone's fernet and credential keys."""
        return self.state / "keystone"


def cache_root() -> Path:
    """The folder that keeps the venv and the database snapshot between runs."""
    configured = os.environ.get("AFFORDML_OPENSTACK_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "affordml-openstack"


def default_run_dir() -> Path:
    """The run folder that the command line uses."""
    return cache_root() / "run"


def database_url(database: str) -> str:
    """SQLAlchemy URL of one service database."""
    return f"mysql+pymysql://{DB_USER}:{PASSWORD}@{HOST}:{PORTS.mariadb}/{database}?charset=utf8"


def transport_url() -> str:
    """oslo.messaging URL of the RabbitMQ broker (guest may log in over loopback only)."""
    return f"rabbit://guest:guest@{HOST}:{PORTS.rabbitmq}/"


def keystone_url() -> str:
    """Keystone's identity v3 endpoint."""
    return f"http://{HOST}:{PORTS.keystone}/v3"


def short_hash(*parts: str) -> str:
    """A 16-hex-digit digest of some strings."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def venv_key() -> str:
    """Names the venv after everything that decides its content."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    return short_hash(
        python, json.dumps(SERVICE_RELEASES, sort_keys=True), ",".join(EXTRA_REQUIREMENTS), CONSTRAINTS_FILE.read_text()
    )


def snapshot_key() -> str:
    """Names the database snapshot after the venv and every address stored in the databases."""
    stored_facts = {
        "ports": asdict(PORTS),
        "password": PASSWORD,
        "transport": transport_url(),
        "keystone": keystone_url(),
        "region": REGION,
        "revision": DATABASE_SNAPSHOT_REVISION,
    }
    return short_hash(venv_key(), json.dumps(stored_facts, sort_keys=True))
