"""Hostile project files: links and hard links to files outside, folders and files affordml did not write, wrong
types, unsafe modes, state/secrets/stamp/known_hosts of the wrong shape, a held or stale run lock, destroy on
folders that are not a project. Each setup plants its input in the sandbox's project folder (or elsewhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.hostile_report.runner import (
    BAD_INPUT,
    DESKTOP,
    DESTROY,
    FILES,
    GOOD_STAMP,
    LOCK,
    SECRET,
    STAMP,
    Case,
    Sandbox,
)

DRY = ("init", "--dry-run", "--facts", str(DESKTOP), "phase", "preflight")
FACTS = ("facts", "--facts", str(DESKTOP))
STATUS = ("status", "--offline")
INIT_FORCE = ("config", "init", "--force")
DESTROY_ARGS = ("destroy", "--yes-i-really-really-mean-it")
SSH_CFG = "hosts:\n  - name: pc\n    address: 127.0.0.1\n    port: 9\n"  # loopback, nothing listens
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def write(rel: str, text: str | bytes, mode: int | None = None):
    def setup(sandbox: Sandbox) -> None:
        path = sandbox.project / rel
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
        if mode is not None:
            path.chmod(mode)

    return setup


def link(rel: str, target: str = "file"):
    def setup(sandbox: Sandbox) -> None:
        path = sandbox.project / rel
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.symlink_to(sandbox.outside / target)

    return setup


def hard(rel: str):
    def setup(sandbox: Sandbox) -> None:
        path = sandbox.project / rel
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.link(sandbox.outside / "file", path)

    return setup


def mkdir(rel: str, mode: int = 0o700):
    def setup(sandbox: Sandbox) -> None:
        (sandbox.project / rel).mkdir(parents=True, exist_ok=True)
        (sandbox.project / rel).chmod(mode)

    return setup


def fifo(rel: str):
    return lambda sandbox: os.mkfifo(sandbox.project / rel)


def chmod_project(mode: int):
    return lambda sandbox: sandbox.project.chmod(mode)


def both(*steps):
    def setup(sandbox: Sandbox) -> None:
        for step in steps:
            step(sandbox)

    return setup


def ssh(step):
    """A config naming a host on loopback where nothing listens, then `step`."""
    return both(write("affordml.yaml", SSH_CFG), step)


def venv(sandbox: Sandbox) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(sandbox.project / "env")], check=True)


def chown_nobody(sandbox: Sandbox) -> None:
    os.chown(sandbox.project, 65534, 65534)


def immutable(sandbox: Sandbox) -> None:
    subprocess.run(["chattr", "+i", str(sandbox.project)], check=True)


def held_lock(sandbox: Sandbox) -> None:
    """Another process holds run.lock (as a running affordml does) until the case ends."""
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
        "os.write(fd, b'{\"pid\": %d}' % os.getpid())\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(300)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(sandbox.project / "run.lock")], stdout=subprocess.PIPE)
    holder.stdout.readline()
    sandbox.cleanups.append(lambda: (holder.kill(), holder.wait(), holder.stdout.close()))


def dead_pid() -> int:
    gone = subprocess.Popen(["true"])
    gone.wait()
    return gone.pid


def stale_lock(with_child: bool):
    def setup(sandbox: Sandbox) -> None:
        child = f', "child": {{"pid": {dead_pid()}, "pgid": {dead_pid()}, "start": 1}}' if with_child else ""
        (sandbox.project / "run.lock").write_text(f'{{"pid": {dead_pid()}{child}}}\n')

    return setup


def linked_folder(tmp: Path) -> Path:
    (tmp / "realproject").mkdir(mode=0o700)
    (tmp / "plink").symlink_to(tmp / "realproject")
    return tmp / "plink"


def linked_file(tmp: Path) -> Path:
    (tmp / "plink").symlink_to(tmp / "outside" / "file")
    return tmp / "plink"


def a_file(tmp: Path) -> Path:
    (tmp / "afile").write_text("x\n")
    return tmp / "afile"


def a_fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "afifo")
    return tmp / "afifo"


def dangling(tmp: Path) -> Path:
    (tmp / "dangling").symlink_to(tmp / "outside" / "nothing-here")
    return tmp / "dangling"


def backups(sandbox: Sandbox) -> str:
    names = sorted(p.name for p in sandbox.project.glob("affordml.yaml.bak*"))
    original = "original" in (sandbox.project / "affordml.yaml.bak.1").read_text()
    return f"backups: {', '.join(names)}; .bak.1 is the original: {original}"


def secrets_mode(sandbox: Sandbox) -> str:
    return f"mode now {oct(os.stat(sandbox.project / 'secrets/platform.yml').st_mode & 0o777)}"


REBOOT_STATE = '{"version": 1, "phases": {"host": {"status": "done"}}, "data": {"reboot_required": ["main"]}}'
RESUMED = {"said": "[init] the previous run"}
S = STAMP
F, B = FILES, BAD_INPUT

# (issue class, kind, file/field, input, setup, args, keyword arguments for Case)
TABLE = [
    # symbolic links to a file or folder outside
    (F, "symlink", "state.json", "link to outside file", link("state.json"), DRY),
    (F, "symlink", "run.lock", "link to outside file", link("run.lock"), DRY),
    (F, "symlink", "facts.json", "link to outside file", link("facts.json"), DRY),
    (F, "symlink", "secrets/platform.yml", "link to outside file", link("secrets/platform.yml"), DRY),
    (F, "symlink", "secrets/", "link to outside folder", link("secrets", "dir"), DRY),
    (F, "symlink", "env/", "link to outside folder (with a valid stamp)", link("env", "dir"), DRY),
    (F, "symlink", "known_hosts", "link to outside file", ssh(link("known_hosts")), ("facts",)),
    (
        F,
        "symlink",
        "env/kolla",
        "link to outside folder inside affordml's env/",
        both(write(f"env/{S}", GOOD_STAMP), link("env/kolla", "dir")),
        DRY,
    ),
    (
        F,
        "symlink",
        "env/vars/plan.yml",
        "link to outside file inside affordml's env/",
        both(write(f"env/{S}", GOOD_STAMP), link("env/vars/plan.yml")),
        DRY,
    ),
    (
        F,
        "symlink",
        "affordml.yaml",
        "config init --force over a link to outside file",
        link("affordml.yaml"),
        INIT_FORCE,
    ),
    (
        F,
        "symlink",
        "affordml.yaml.bak.1",
        "planted backup name linking outside",
        both(write("affordml.yaml", "vms: {}\n"), link("affordml.yaml.bak.1")),
        INIT_FORCE,
    ),
    (F, "symlink", f"env/{S}", "stamp is a link to an outside file", link(f"env/{S}"), DRY),
    (F, "symlink", "-p", "project folder is a link to a folder", None, DRY, {"project": linked_folder}),
    (F, "symlink", "-p", "project folder is a link to a file", None, DRY, {"project": linked_file}),
    (
        F,
        "symlink",
        "facts --save",
        "save target is a link to outside file",
        None,
        (*FACTS, "--save", "{tmp}/outside/savelink.json"),
    ),
    (F, "symlink", f"env/{S}", "status: stamp is a link to outside", link(f"env/{S}"), STATUS),
    # dangling links: nothing may be created at their targets
    (F, "dangling link", "state.json", "link to outside/missing", link("state.json", "missing"), DRY),
    (F, "dangling link", "run.lock", "link to outside/missing", link("run.lock", "missing"), DRY),
    (F, "dangling link", "facts.json", "link to outside/missing", link("facts.json", "missing"), DRY),
    (
        F,
        "dangling link",
        "secrets/platform.yml",
        "link to outside/missing",
        link("secrets/platform.yml", "missing"),
        DRY,
    ),
    (F, "dangling link", "known_hosts", "link to outside/missing", ssh(link("known_hosts", "missing")), ("facts",)),
    (F, "dangling link", "env/", "link to outside/missing", link("env", "missing"), DRY),
    (F, "dangling link", "secrets/", "link to outside/missing", link("secrets", "missing"), DRY),
    # hard links to a file outside
    (F, "hard link", "state.json", "second name of outside file", hard("state.json"), DRY),
    (F, "hard link", "run.lock", "second name of outside file", hard("run.lock"), DRY),
    (F, "hard link", "facts.json", "second name of outside file", hard("facts.json"), DRY),
    (F, "hard link", "secrets/platform.yml", "second name of outside file", hard("secrets/platform.yml"), DRY),
    (F, "hard link", "known_hosts", "second name of outside file", ssh(hard("known_hosts")), ("facts",)),
    (F, "hard link", "affordml.yaml", "config init --force over a hard link", hard("affordml.yaml"), INIT_FORCE),
    (
        F,
        "hard link",
        "facts --save",
        "save target is a hard link of outside file",
        None,
        (*FACTS, "--save", "{tmp}/outside/hardsave.json"),
    ),
    # folders affordml did not create, files it did not write
    (F, "foreign folder", "env/", "a virtualenv named env", venv, DRY),
    (F, "foreign folder", "env/", "a folder with a user's file, no stamp", write("env/notes.txt", "mine\n"), DRY),
    (F, "foreign file", "env", "a regular file named env", write("env", "mine\n"), DRY),
    (F, "foreign file", "facts.json", "JSON that is not a facts file", write("facts.json", '{"my": 1}\n'), DRY),
    (F, "foreign file", "facts.json", "not JSON", write("facts.json", "my notes\n"), DRY),
    (F, "foreign file", "run.lock", "a user's text file", write("run.lock", "my notes\n"), DRY),
    (B, "wrong type", "run.lock", "a directory", mkdir("run.lock"), DRY),
    (B, "wrong type", "run.lock", "a FIFO", fifo("run.lock"), DRY),
    (B, "wrong type", "state.json", "a directory", mkdir("state.json"), DRY),
    (B, "wrong type", "secrets", "a regular file", write("secrets", "x\n"), DRY),
    (B, "wrong type", "secrets/platform.yml", "a directory", mkdir("secrets/platform.yml"), DRY),
    (B, "wrong type", "facts.json", "a directory", mkdir("facts.json"), DRY),
    (B, "wrong type", "known_hosts", "a directory", ssh(mkdir("known_hosts")), ("facts",)),
    (B, "wrong type", "facts.json", "a FIFO", fifo("facts.json"), DRY),
    # state.json of the wrong shape
    (B, "state shape", "state.json", "[]", write("state.json", "[]"), DRY),
    (B, "state shape", "state.json", "null", write("state.json", "null"), DRY),
    (B, "state shape", "state.json", '"text"', write("state.json", '"text"'), DRY),
    (B, "state shape", "state.json", "42", write("state.json", "42"), DRY),
    (B, "state shape", "state.json", "unknown top field", write("state.json", '{"version": 1, "x": 1}'), DRY),
    (
        B,
        "state shape",
        "state.json.phases.host",
        "unknown phase field",
        write("state.json", '{"version": 1, "phases": {"host": {"colour": 1}}}'),
        DRY,
    ),
    (B, "state shape", "state.json.phases", "a list", write("state.json", '{"version": 1, "phases": []}'), DRY),
    (B, "state shape", "state.json.data", "a list", write("state.json", '{"version": 1, "data": []}'), DRY),
    (B, "state shape", "state.json.version", "99", write("state.json", '{"version": 99}'), DRY),
    (B, "state shape", "state.json", "not JSON", write("state.json", "{oops"), DRY),
    (B, "state shape", "state.json", "empty file", write("state.json", ""), DRY),
    (B, "state shape", "state.json", "non-UTF-8 bytes", write("state.json", b"\xff\xfe\x00"), DRY),
    (
        B,
        "state shape",
        "state.json.phases.host.started",
        '"yesterday"',
        write("state.json", '{"version": 1, "phases": {"host": {"started": "yesterday"}}}'),
        DRY,
    ),
    (B, "state shape", "state.json", "status with [] state", write("state.json", "[]"), STATUS),
    # secrets files: their content must never be echoed
    (
        B,
        "secrets",
        "secrets/platform.yml",
        "YAML error (secret inside)",
        write("secrets/platform.yml", f"{SECRET}-secret: [x\n"),
        DRY,
    ),
    (B, "secrets", "secrets/platform.yml", "a list", write("secrets/platform.yml", f"- {SECRET}-secret\n"), DRY),
    (B, "secrets", "secrets/platform.yml", "a plain string", write("secrets/platform.yml", f"{SECRET}-secret\n"), DRY),
    (
        B,
        "secrets",
        "secrets/platform.yml",
        "non-text key",
        write("secrets/platform.yml", f"{{1: {SECRET}-secret}}\n"),
        DRY,
    ),
    (B, "secrets", "secrets/platform.yml", "non-UTF-8 bytes", write("secrets/platform.yml", b"hunter2\xff\xfe"), DRY),
    (
        F,
        "secrets",
        "secrets/platform.yml",
        "empty file, mode 0644 (filled, kept 0600)",
        write("secrets/platform.yml", "", 0o644),
        DRY,
        {"note": secrets_mode},
    ),
    # modes, owners, read-only
    (F, "folder mode", "-p", "project folder 0777", chmod_project(0o777), DRY),
    (F, "folder mode", "-p", "project folder 0770", chmod_project(0o770), DRY),
    (F, "folder mode", "secrets/", "secrets 0777", mkdir("secrets", 0o777), DRY),
    (F, "folder owner", "-p", "project folder owned by uid 65534", chown_nobody, DRY),
    (B, "read-only", "-p", "immutable project folder (chattr +i)", immutable, DRY),
    (
        F,
        "folder mode",
        "env/",
        "env 0777 with valid stamp",
        both(write(f"env/{S}", GOOD_STAMP), mkdir("env", 0o777)),
        DRY,
    ),
    # -p pointing at odd things
    (B, "-p", "-p", "a regular file", None, DRY, {"project": a_file}),
    (B, "-p", "-p", "/dev/null", None, DRY, {"project": lambda tmp: Path("/dev/null")}),
    (B, "-p", "-p", "a FIFO", None, DRY, {"project": a_fifo}),
    (B, "-p", "-p", "a dangling link", None, DRY, {"project": dangling}),
    (B, "-p", "-p", "a file (plan)", None, ("plan", "--facts", str(DESKTOP)), {"project": a_file}),
    (B, "-p", "-p", "a file (status)", None, STATUS, {"project": a_file}),
    (B, "-p", "-p", "a file (config init)", None, ("config", "init"), {"project": a_file}),
    # facts --save
    (B, "facts --save", "--save", "into a missing folder", None, (*FACTS, "--save", "{tmp}/nowhere/f.json")),
    (F, "facts --save", "--save", "over an outside non-facts file", None, (*FACTS, "--save", "{tmp}/outside/file")),
    (B, "facts --save", "--save", "onto a folder", None, (*FACTS, "--save", "{tmp}")),
    (F, "facts --save", "--save", "/dev/null", None, (*FACTS, "--save", "/dev/null")),
    (B, "facts --save", "--save", "under a file", None, (*FACTS, "--save", "{tmp}/outside/file/f.json")),
    # known_hosts content
    (
        B,
        "known_hosts",
        "known_hosts",
        "@revoked line",
        ssh(write("known_hosts", f"@revoked 127.0.0.1 {KEY}\n")),
        ("facts",),
    ),
    (
        B,
        "known_hosts",
        "known_hosts",
        "@cert-authority line",
        ssh(write("known_hosts", f"@cert-authority * {KEY}\n")),
        ("facts",),
    ),
    (B, "known_hosts", "known_hosts", "garbage line", ssh(write("known_hosts", "not a key line\n")), ("facts",)),
    (B, "known_hosts", "known_hosts", "unknown @marker", ssh(write("known_hosts", f"@bogus h {KEY}\n")), ("facts",)),
    (B, "known_hosts", "known_hosts", "bad base64 key", ssh(write("known_hosts", "h ssh-ed25519 !!!!\n")), ("facts",)),
    (B, "known_hosts", "known_hosts", "non-UTF-8 bytes", ssh(write("known_hosts", b"\xff\xfe h\n")), ("facts",)),
    # status with a malformed env stamp
    (B, "env stamp", f"env/{S}", "a list", write(f"env/{S}", "- x\n"), STATUS),
    (B, "env stamp", f"env/{S}", "missing keys", write(f"env/{S}", "plan_hash: x\n"), STATUS),
    (B, "env stamp", f"env/{S}", "YAML error", write(f"env/{S}", "{x\n"), STATUS),
    (B, "env stamp", f"env/{S}", "non-UTF-8 bytes", write(f"env/{S}", b"\xff\xfe"), STATUS),
    (
        B,
        "env stamp",
        f"env/{S}",
        "version is a list",
        write(f"env/{S}", "affordml_version: [1]\nplan_hash: x\n"),
        STATUS,
    ),
    (B, "env stamp", "env", "env is a file", write("env", "x\n"), STATUS),
    # config init --force
    (
        F,
        "config backup",
        "affordml.yaml",
        "config init --force twice (user's original kept)",
        write("affordml.yaml", "vms: {}  # the user's original\n"),
        INIT_FORCE,
        {"times": 2, "note": backups},
    ),
    (
        F,
        "config backup",
        "affordml.yaml",
        "config init without --force over a file",
        write("affordml.yaml", "vms: {}\n"),
        ("config", "init"),
    ),
    (B, "config backup", "affordml.yaml", "a directory named affordml.yaml", mkdir("affordml.yaml"), INIT_FORCE),
    # runs and their lock
    (LOCK, "run lock", "run.lock", "held by another live process", held_lock, DRY),
    (LOCK, "run lock", "run.lock", "left by a killed run (dead pid)", stale_lock(False), DRY, RESUMED),
    (
        LOCK,
        "run lock",
        "run.lock",
        "left by a killed run whose recorded ansible-playbook is gone",
        stale_lock(True),
        DRY,
        RESUMED,
    ),
    (
        LOCK,
        "pending reboot",
        "state.json.data.reboot_required",
        "host phase asked for a reboot; init phase openstack",
        write("state.json", REBOOT_STATE),
        ("init", "--facts", str(DESKTOP), "phase", "openstack"),
    ),
    # destroy only what is this project's
    (DESTROY, "destroy", "-p", "empty folder", None, DESTROY_ARGS),
    (DESTROY, "destroy", "-p", "missing folder", None, DESTROY_ARGS, {"project": lambda tmp: tmp / "missing"}),
    (DESTROY, "destroy", "-p", "folder with only affordml.yaml", write("affordml.yaml", "vms: {}\n"), DESTROY_ARGS),
    (
        DESTROY,
        "destroy",
        "state.json",
        "state without the openstack phase (kolla clouds.yaml must not be used)",
        write("state.json", '{"version": 1, "phases": {"host": {"status": "done"}}}'),
        DESTROY_ARGS,
    ),
    (DESTROY, "destroy", "-p", "a file", None, DESTROY_ARGS, {"project": a_file}),
    (
        DESTROY,
        "destroy",
        "secrets/clouds.yaml",
        "broken credentials file (content not echoed)",
        write("secrets/clouds.yaml", f"clouds: [{SECRET}-secret\n"),
        DESTROY_ARGS,
    ),
]


def file_cases() -> list[Case]:
    cases = []
    for issue_class, kind, field, shown, setup, args, *more in TABLE:
        cases.append(Case(issue_class, kind, field, shown, tuple(args), setup, **(more[0] if more else {})))
    return cases
