"""Command line: bring the test control plane up, show its status, or take it down."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .control_plane import (
    bring_up,
    describe,
    exclusive_use,
    recorded_control_plane,
    running_control_plane,
    stop_run,
)
from .install import PrerequisiteMissing
from .processes import ServiceFailed


def build_parser() -> argparse.ArgumentParser:
    """The up/down/status command line."""
    parser = argparse.ArgumentParser(prog="python3 -m tests.testbed.openstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="install what is missing and start every service")
    up.add_argument("--run-dir", type=Path, help="folder for configs, logs and data (default: in the cache)")
    up.add_argument("--no-public-network", action="store_true", help="skip the external 'public' network")
    down = commands.add_parser("down", help="stop every process of the control plane")
    down.add_argument("--run-dir", type=Path, help="the run folder (default: the one that is up)")
    down.add_argument("--force", action="store_true", help="stop it even while a test session uses it")
    commands.add_parser("status", help="show which services run")
    return parser


def command_up(args: argparse.Namespace) -> int:
    """Bring the control plane up and leave it running."""
    with exclusive_use(wait_s=0):
        plane = bring_up(args.run_dir, with_public_network=not args.no_public_network)
    print("\n".join(describe(plane)))
    print(f"use it with: OS_CLIENT_CONFIG_FILE={plane.clouds_yaml} OS_CLOUD={plane.cloud_name}")
    return 0


def command_down(args: argparse.Namespace) -> int:
    """Stop the control plane, unless a test session is using it (then only with --force)."""
    plane = recorded_control_plane()
    if args.run_dir is None and plane is not None and plane.owner == "pytest" and not args.force:
        try:
            with exclusive_use(wait_s=0):
                stopped = stop_run(None)
        except ServiceFailed:
            print(
                f"a test session is using the control plane in {plane.layout.root}; "
                "it stops it itself (use --force to stop it anyway)",
                file=sys.stderr,
            )
            return 1
    else:
        stopped = stop_run(args.run_dir)
    if not stopped:
        print("no control plane recorded; nothing to stop")
    return 0


def command_status(_: argparse.Namespace) -> int:
    """Print the state of the recorded control plane; exit 1 unless every process of it runs."""
    plane = recorded_control_plane()
    if plane is None:
        print("no control plane is recorded")
        return 1
    print("\n".join(describe(plane)))
    return 0 if running_control_plane() is not None else 1


def main(argv: list[str] | None = None) -> int:
    """Run one command and turn known failures into a message and exit status 2."""
    args = build_parser().parse_args(argv)
    handlers = {"up": command_up, "down": command_down, "status": command_status}
    try:
        return handlers[args.command](args)
    except (PrerequisiteMissing, ServiceFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
