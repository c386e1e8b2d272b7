"""`affordml add-node HOST --address A --user U --key PATH --port N`: a PC given by flags instead of a hosts entry.

The flags are checked as the config model checks those fields (its own messages, naming the flag). A PC that
affordml.yaml lists already must agree with them (a re-run; never an overwrite). A new PC is recorded in
affordml.yaml as one more item of its block-style `hosts:` list (affordml/config/edit.py), the rest of the file
kept as the user wrote it; the result must read back, with the project's own loader, as the old values plus
exactly this host. Where that cannot be done safely, nothing is written and the lines to paste are shown."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from affordml.config.model import Config, Host
from affordml.errors import AffordmlError, ConfigError
from affordml.project import CONFIG_NAME, Project

FLAGS = {"name": "HOST", "address": "--address", "user": "--user", "ssh_key": "--key", "port": "--port"}
NEW_FILE_MODE = 0o600  # as `affordml config init` writes it


@dataclass(frozen=True)
class NodeFlags:
    address: str | None = None
    user: str | None = None
    key: Path | None = None
    port: int | None = None

    @property
    def given(self) -> bool:
        return any(v is not None for v in (self.address, self.user, self.key, self.port))


@dataclass(frozen=True)
class Addition:
    """A PC to record in affordml.yaml: the file's text as read, as it will be written, and the config after."""

    host: Host
    lines: list[str]  # the new YAML lines, as the user would paste them
    old_text: str | None  # None: no affordml.yaml yet
    new_text: str
    config: Config


def reconcile(project: Project, name: str, flags: NodeFlags, say: Callable[[str], None]) -> Addition | None:
    """None when affordml.yaml already lists HOST (flags, if any, agree with it); else the Addition to write
    once the PC has passed first contact and the doctor. Refusals are one line; nothing is written here."""
    from affordml.config.load import env_overrides, load_config

    config = load_config(project.config_file)
    known = {h.name: h for h in config.hosts}
    if name in known:
        if name != config.hosts[0].name:
            _refuse_disagreement(known[name], flags)
        return None
    if not flags.given:
        return None  # add-node refuses an unknown HOST with its own message
    if flags.address is None:
        raise ConfigError(
            f"add-node: {name} is not in hosts of affordml.yaml, and --address is missing to add it there",
            f"give --address (and --user, --key, --port as needed): `affordml add-node {name} --address A ...`",
        )
    host = checked_host(name, flags)
    entry = host.model_dump(include={"name", *_given_fields(flags)})
    if "hosts" in env_overrides(os.environ):
        _refuse_edit(name, entry, "AFFORDML_HOSTS__* environment overrides replace its hosts", say)
    return _addition(project, host, entry, say)


def checked_host(name: str, flags: NodeFlags) -> Host:
    """The flags as a hosts entry, checked by the config model; an error names the flag and the field."""
    fields = {"name": name, "address": flags.address, "user": flags.user, "port": flags.port}
    fields["ssh_key"] = checked_key(flags.key) if flags.key is not None else None
    try:
        host = Host.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "name"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(
            f"add-node {FLAGS.get(field, field)}: {message}",
            f"correct {FLAGS.get(field, field)} (it becomes hosts.{name}.{field} in affordml.yaml)",
        ) from None
    if host.is_local:
        raise ConfigError(
            'add-node --address: "local" is the first PC; another PC needs its own address',
            "give the new PC's IP address or DNS name",
        )
    return host


def checked_key(key: Path) -> str:
    """--key: an existing regular file this user can read, kept as an absolute path (later runs may start in
    another folder). It is only opened here, never read, run or passed to a shell."""
    path = Path(os.path.abspath(Path(key).expanduser()))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(f"add-node --key: {path} does not exist", "give the SSH private key file") from None
    except PermissionError:
        raise ConfigError(f"add-node --key: {path} cannot be read by you", "give a key file you can read") from None
    except OSError as exc:
        raise ConfigError(f"add-node --key: {path} cannot be opened ({exc.strerror})", "give a key file") from None
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    if stat.S_ISDIR(mode):
        raise ConfigError(f"add-node --key: {path} is a folder", "give the private key file inside it")
    if not stat.S_ISREG(mode):
        raise ConfigError(f"add-node --key: {path} is not a regular file", "give the SSH private key file")
    return str(path)


def write(project: Project, addition: Addition, say: Callable[[str], None]) -> None:
    """Record the PC: the file must still be what was read; temp file then rename, with the file's mode."""
    from affordml import safefile

    now, mode = _read_own(project)
    if now != addition.old_text:
        raise ConfigError(
            f"{project.config_file} changed while add-node ran; {addition.host.name} was not recorded",
            f"run `affordml add-node {addition.host.name}` with the same flags again",
        )
    safefile.write_text(project.root, CONFIG_NAME, addition.new_text, mode)
    say(f"[add-node] {project.config_file}: {addition.host.name} recorded in hosts (the rest kept as it was):")
    for line in addition.lines:
        say(line)


def show(project: Project, addition: Addition, say: Callable[[str], None]) -> None:
    say(f"[add-node] --plan: {project.config_file} would gain (nothing written):")
    for line in addition.lines:
        say(line)


# ---------------------------------------------------------------------------------------------- helpers


def _given_fields(flags: NodeFlags) -> set[str]:
    given = {"address": flags.address, "user": flags.user, "ssh_key": flags.key, "port": flags.port}
    return {k for k, v in given.items() if v is not None}


def _refuse_disagreement(host: Host, flags: NodeFlags) -> None:
    """A flag that differs from the PC's entry is refused: the user's file is never silently overwritten."""
    wanted = {"address": flags.address, "user": flags.user, "port": flags.port}
    wanted["ssh_key"] = checked_key(flags.key) if flags.key is not None else None
    for field, value in wanted.items():
        current = getattr(host, field)
        if value is None or _same(field, current, value):
            continue
        flag = FLAGS[field]
        raise ConfigError(
            f"add-node {flag}: hosts.{host.name}.{field} is {current!r} in affordml.yaml but {flag} says {value!r}; "
            "nothing was changed",
            f"drop {flag} (affordml.yaml's value is used), or change hosts.{host.name}.{field} in affordml.yaml",
        )


def _same(field: str, current, value) -> bool:
    if field == "ssh_key":
        return current is not None and os.path.abspath(Path(current).expanduser()) == value
    return current == value


def _addition(project: Project, host: Host, entry: dict, say) -> Addition:
    from affordml.config.edit import NotEditable, section_lines, with_host

    try:
        old_text, _ = _read_own(project)
    except AffordmlError as exc:
        _refuse_edit(host.name, entry, exc.problem, say)
    try:
        new_text = with_host(old_text or "", entry)
        config = _read_back(project, old_text, new_text, entry)
    except NotEditable as exc:
        _refuse_edit(host.name, entry, str(exc), say)
    has_hosts = old_text is not None and "hosts" in _parse(project, old_text)
    lines = _item_lines(entry) if has_hosts else section_lines({"name": config.hosts[0].name}, entry)
    return Addition(host, lines, old_text, new_text, config)


def _read_own(project: Project) -> tuple[str | None, int]:
    """affordml.yaml's text (None when missing) and mode; a link, a second name or another's file is refused."""
    from affordml import safefile

    text = safefile.read_text(project.root, CONFIG_NAME)
    if text is None:
        return None, NEW_FILE_MODE
    return text, stat.S_IMODE(os.stat(project.config_file, follow_symlinks=False).st_mode)


def _read_back(project: Project, old_text: str | None, new_text: str, entry: dict) -> Config:
    """The edited text, read by the project's loader, must be the old values plus exactly the new host."""
    import copy

    from affordml.config.edit import FIRST_HOST, NotEditable
    from affordml.config.load import deep_merge, env_overrides, validate

    try:
        new = _parse(project, new_text)
    except ConfigError:
        raise NotEditable("the edited file would not be valid YAML") from None
    expected = copy.deepcopy(_parse(project, old_text or ""))
    expected.setdefault("hosts", [{"name": FIRST_HOST}]).append(entry)
    if new != expected:
        raise NotEditable("the edited file would not read back as the old values plus this host")
    return validate(deep_merge(new, env_overrides(os.environ)), f"{project.config_file} with the new host")


def _parse(project: Project, text: str) -> dict:
    from affordml.config.load import parse_user_text

    return parse_user_text(text, project.config_file)


def _item_lines(entry: dict) -> list[str]:
    from affordml.config.edit import item_lines

    return item_lines(entry, 2, 2)


def _refuse_edit(name: str, entry: dict, why: str, say: Callable[[str], None]) -> NoReturn:
    """Show the lines to paste (stdout), then refuse in one line."""
    say(f"[add-node] add these lines to the hosts list of affordml.yaml, then run `affordml add-node {name}`:")
    for line in _item_lines(entry):
        say(line)
    raise ConfigError(
        f"add-node: affordml.yaml cannot be edited safely ({why}); {name} was not recorded, nothing was changed",
        f"paste the lines shown above into hosts of affordml.yaml, then run `affordml add-node {name}`",
    )
