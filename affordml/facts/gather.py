"""Choose where a host's facts come from: a saved file, a configured remote host, or this machine."""

from __future__ import annotations

from pathlib import Path

from affordml.config.model import Config
from affordml.errors import ConfigError
from affordml.facts.collect import collect_local
from affordml.facts.model import HostFacts
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.snapshot import Snapshot
from affordml.facts.sources import load_snapshot_file, ssh_snapshot
from affordml.project import Project


def gather_snapshot(
    project: Project,
    config: Config,
    facts_file: Path | None = None,
    host_name: str | None = None,
    accept_host_key: str | None = None,
) -> Snapshot:
    if facts_file is not None:
        return load_snapshot_file(facts_file)
    host = config.hosts[0] if host_name is None else _host(config, host_name)
    if host.is_local:
        return collect_local()
    key = Path(host.ssh_key).expanduser() if host.ssh_key else None
    return ssh_snapshot(host.address, host.user, key, project.known_hosts, host.port, accept_host_key)


def _host(config: Config, name: str):
    for host in config.hosts:
        if host.name == name:
            return host
    raise ConfigError(
        f"--host: no host named {name!r} in hosts", f"use one of: {', '.join(h.name for h in config.hosts)}"
    )


def gather_facts(*args, **kwargs) -> HostFacts:
    return facts_from_snapshot(gather_snapshot(*args, **kwargs))
