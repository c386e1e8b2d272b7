"""JupyterHub's side of the ml phase: the admin account's password (generated once into secrets/, handed to helm
in a private values file, never on a command line), the address users open, and what the values template needs.
Light imports only: the render context and `affordml status` use it."""

from __future__ import annotations

import secrets as random
from pathlib import Path

import yaml

ADMIN_USER = "admin"
NODE_PORT = 30080  # proxy-public's http NodePort on every node (the VMs' security group opens 30000-32767)
SECRETS_FILE = "jupyterhub.yml"  # under secrets/: {admin_password: ...}
VALUES_FILE = "jupyterhub-values.yaml"  # under secrets/: the admin's password as chart values, mode 0600
PASSWORD_KEY = "admin_password"


def render_context() -> dict:
    return {"jupyterhub_admin": ADMIN_USER, "jupyterhub_node_port": NODE_PORT}


def ensure_admin_password(project) -> tuple[str, bool]:
    """(the admin's password, whether it was made now). Made once; an existing one is never replaced."""
    from affordml.secrets import read_secrets, secure_dir, write_private

    path = secure_dir(project.secrets_dir, project.root) / SECRETS_FILE
    current = read_secrets(path, project.root) or {}
    password = current.get(PASSWORD_KEY)
    if isinstance(password, str) and password:
        return password, False
    password = random.token_urlsafe(15)  # 20 characters, 120 bits: typed once, then changed or kept
    text = "# affordml: JupyterHub's admin account (user admin). Keep this file private.\n"
    write_private(path, text + yaml.safe_dump({**current, PASSWORD_KEY: password}), project.root)
    return password, True


def write_secret_values(project, password: str) -> Path:
    """The chart values that carry the password, in a 0600 file helm reads (written through a temp file)."""
    from affordml.secrets import secure_dir, write_private

    path = secure_dir(project.secrets_dir, project.root) / VALUES_FILE
    values = {"custom": {"affordml": {"adminPassword": password}}}
    text = "# affordml: private chart values for the jupyterhub release. Rewritten on every ml phase.\n"
    write_private(path, text + yaml.safe_dump(values), project.root)
    return path


def hub_url(state_data: dict) -> str | None:
    """http://<a worker's floating IP>:NODE_PORT once the ml phase installed JupyterHub, else None."""
    releases = _list(_mapping(_mapping(state_data).get("ml")).get("releases"))
    installed = any(
        _mapping(r).get("name") == "jupyterhub" and _mapping(r).get("action") != "removed" for r in releases
    )
    servers = _mapping(_mapping(_mapping(state_data).get("cloud")).get("servers"))
    reachable = {vm: s for vm, s in sorted(servers.items()) if isinstance(s, dict) and s.get("floating_ip")}
    if not installed or not reachable:
        return None
    workers = [s for s in reachable.values() if s.get("role") == "worker"]
    server = (workers or list(reachable.values()))[0]
    return f"http://{server['floating_ip']}:{NODE_PORT}/"


def _mapping(value) -> dict:
    """A part of state.json as affordml wrote it, or empty: a hand-edited state of another shape shows nothing."""
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def hub_status(state_data: dict) -> dict:
    """The `affordml status` line for JupyterHub, when it is installed and reachable."""
    url = hub_url(state_data)
    return {"jupyterhub": f"{url} (admin: {ADMIN_USER}, password in secrets/{SECRETS_FILE})"} if url else {}
