"""A small command line over the test bed, for tools that cannot hold a Python object (molecule's
create/destroy playbooks). A test bed belongs to the process that started it, so ``up`` leaves a
background owner process that keeps the hosts until ``down`` (or a signal) tells it to stop.

    python -m tests.testbed up --dir DIR --names node1 node2   # prints DIR/instances.json
    python -m tests.testbed down --dir DIR

DIR receives instances.json (name, address, user, port), the SSH key, known_hosts, the route-guarded ssh
wrapper (ssh-guarded) and the owner's log. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.testbed.nspawn import Testbed, live_cmdline

UP_TIMEOUT_S = 300.0
DOWN_TIMEOUT_S = 60.0


def serve(directory: Path, names: list[str]) -> int:
    """Own a test bed: start it, publish how to reach it, keep it until SIGTERM/SIGINT, then stop it."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    with Testbed() as bed:
        try:
            hosts = bed.start(len(names), names)
            for source, name in (
                (bed.key_path, "id_ed25519"),
                (bed.known_hosts, "known_hosts"),
                (bed.ssh_guard, "ssh-guarded"),
            ):
                shutil.copy2(source, directory / name)
            instances = [{"name": h.name, "address": h.address, "user": h.user, "port": h.port} for h in hosts]
            partial = directory / "instances.json.partial"
            partial.write_text(json.dumps({"bridge": bed.bridge, "instances": instances}, indent=2))
            partial.rename(directory / "instances.json")
        except BaseException as error:
            (directory / "failed").write_text(f"{type(error).__name__}: {error}\n")
            raise
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    (directory / "instances.json").unlink(missing_ok=True)
    return 0


def up(directory: Path, names: list[str], timeout_s: float = UP_TIMEOUT_S) -> int:
    """Start the owner process in the background and wait (bounded) until its hosts answer."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "instances.json").exists():
        print((directory / "instances.json").read_text())
        return 0
    (directory / "failed").unlink(missing_ok=True)
    with open(directory / "owner.log", "ab") as log:
        owner = subprocess.Popen(
            [sys.executable, "-m", "tests.testbed", "serve", "--dir", str(directory), "--names", *names],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (directory / "owner.pid").write_text(f"{owner.pid}\n")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (directory / "instances.json").exists():
            print((directory / "instances.json").read_text())
            return 0
        if owner.poll() is not None or (directory / "failed").exists():
            break
        time.sleep(0.2)
    _stop_owner(directory)
    log_tail = (directory / "owner.log").read_text(errors="replace")[-3000:]
    print(f"test bed did not come up within {timeout_s:.0f} s:\n{log_tail}", file=sys.stderr)
    return 1


def down(directory: Path) -> int:
    """Tell the owner process to tear its test bed down and wait (bounded) until it has."""
    return 0 if _stop_owner(directory) else 1


def _stop_owner(directory: Path, timeout_s: float = DOWN_TIMEOUT_S) -> bool:
    pid_file = directory / "owner.pid"
    if not pid_file.exists():
        return True
    pid = int(pid_file.read_text())
    if _is_owner(pid):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _is_owner(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _is_owner(pid):
        print(f"test bed owner {pid} did not stop within {timeout_s:.0f} s", file=sys.stderr)
        return False
    pid_file.unlink(missing_ok=True)
    return True


def _is_owner(pid: int) -> bool:
    """Whether pid is a live `tests.testbed serve` process (not a zombie, not a reused pid)."""
    cmdline = live_cmdline(pid)
    return cmdline is not None and b"tests.testbed\0serve" in cmdline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.testbed", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "serve", "down"):
        command = sub.add_parser(name)
        command.add_argument("--dir", type=Path, required=True, help="where the test bed's access files go")
        if name != "down":
            command.add_argument("--names", nargs="+", default=["node1"], help="host names")
    args = parser.parse_args(argv)
    directory = args.dir.resolve()
    if args.command == "up":
        return up(directory, args.names)
    if args.command == "serve":
        return serve(directory, args.names)
    return down(directory)


if __name__ == "__main__":
    sys.exit(main())
