"""Hostile values: Jinja and shell payloads in every string field of affordml.yaml and of a facts file, Rich
markup and terminal escapes in text the CLI prints, and malformed config/facts input. The fields and payloads
are tests/hostile.py's, the ones the unit and host-phase tests use."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.hostile import (
    CONFIG_FREE_TEXT,
    CONFIG_SHAPED,
    FACTS_FIELDS,
    GPU,
    desktop_snapshot,
    hostile_snapshot,
    payloads,
    set_config_field,
)
from tests.hostile_report.runner import BAD_INPUT, DESKTOP, TERMINAL, VALUES, Case, Sandbox

BASE = {"hosts": [{"name": "main", "address": "192.0.2.10", "user": "ops"}]}
FACTS = "{tmp}/facts.json"
PLAN = ("plan", "--facts", str(DESKTOP))
PLAN_FACTS = ("plan", "--facts", FACTS)
MARKUP = "[bold red]EVIL[/bold red] [link=https://example.invalid]x[/link]"
ESCAPES = ("\x1b[2J\x1b[31mX", "X\x1b]8;;https://example.invalid\x07y", "X\u202eevil", "X\x9b31m")
UNSAFE = "accepted as free text (reaches Ansible only as !unsafe data)"


def project_with(config: dict | str | bytes | None = None, snap: dict | None = None):
    """A setup writing affordml.yaml into the project and a facts file next to it (outside the project)."""

    def setup(sandbox: Sandbox) -> None:
        path = sandbox.project / "affordml.yaml"
        if isinstance(config, dict):
            path.write_text(json.dumps(config))
        elif isinstance(config, str):
            path.write_text(config)
        elif isinstance(config, bytes):
            path.write_bytes(config)
        if snap is not None:
            (sandbox.tmp / "facts.json").write_text(json.dumps(snap))

    return setup


def value_cases(marker: str) -> list[Case]:
    return [*_config_payloads(marker), *_facts_payloads(marker), *_terminal(), *_bad_input()]


def _config_payloads(marker: str) -> list[Case]:
    cases = []
    for fields, kind, accepted in (
        (CONFIG_SHAPED, "config, shaped field", ""),
        (CONFIG_FREE_TEXT, "config, free text", UNSAFE),
    ):
        for field in fields:
            for value in payloads(marker).values():
                setup = project_with(set_config_field(BASE, field, value))
                cases.append(Case(VALUES, kind, field, value, PLAN, setup, accepted=accepted))
    return cases


def _facts_payloads(marker: str) -> list[Case]:
    kinds = list(payloads(marker).values())
    cases = []
    for field in (f for f in FACTS_FIELDS if not f.free_text):
        for value in kinds:
            setup = project_with(BASE, hostile_snapshot([field], lambda _, v=value: v))
            cases.append(Case(VALUES, "facts, shaped field", field.name, value, PLAN_FACTS, setup))
    for i, field in enumerate(f for f in FACTS_FIELDS if f.free_text):
        value = kinds[i % len(kinds)]  # one payload kind per field, in turn
        setup = project_with(BASE, hostile_snapshot([field], lambda _, v=value: v))
        accepted = "accepted as text (this command does not print it)"
        cases.append(
            Case(
                VALUES,
                "facts, free text",
                field.name,
                value,
                ("facts", "--facts", FACTS),
                setup,
                echo=value,
                accepted=accepted,
            )
        )
    return cases


def _terminal() -> list[Case]:
    cases = []
    for field in (f for f in FACTS_FIELDS if f.name in ("os.pretty_name", "cpu.model", "hostname")):
        for text in (MARKUP, *ESCAPES):
            setup = project_with(BASE, hostile_snapshot([field], lambda _, t=text: t))
            kind = "Rich markup" if text == MARKUP else "escape sequence"
            cases.append(
                Case(
                    TERMINAL,
                    kind,
                    field.name,
                    text,
                    ("facts", "--facts", FACTS),
                    setup,
                    echo=MARKUP if text == MARKUP else None,
                )
            )
    snap = desktop_snapshot()
    xml = snap["commands"]["nvidia-smi -q -x"]
    snap["commands"]["nvidia-smi -q -x"] = xml.replace("NVIDIA GeForce RTX 4090", MARKUP, 1)
    for command in ("facts", "plan", "doctor"):
        cases.append(
            Case(
                TERMINAL,
                "Rich markup",
                f"gpus[].name via `{command}`",
                MARKUP,
                (command, "--facts", FACTS),
                project_with(BASE, snap),
                echo=MARKUP,
                ok_rcs=(0, 1),
            )
        )
    return cases


def _bad_input() -> list[Case]:
    def bad(field: str, shown: str, setup, args=PLAN, **kw) -> Case:
        return Case(BAD_INPUT, "bad input", field, shown, args, setup, **kw)

    cases = [
        bad("affordml.yaml duplicate top key", "ml: twice", project_with("hosts:\n  - name: a\nml: {}\nml: {}\n")),
        bad(
            "affordml.yaml duplicate nested key",
            "hosts[0].name twice",
            project_with("hosts:\n  - name: a\n    name: b\n"),
        ),
        bad("facts file duplicate key", '"source" twice', _duplicate_key_facts, PLAN_FACTS),
    ]
    cases += [
        bad("hosts[0].name", v, project_with({"hosts": [{"name": v}]}))
        for v in ("main\n", "main\r", "Main", "ma in", "-main")
    ]
    shaped = {
        "hosts[0].address": (
            "192.0.2.10\n",
            "10.0.0.1 ansible_ssh_common_args=-oProxyCommand=x",
            "-oProxyCommand=x",
            "a..b",
        ),
        "hosts[0].user": ("root\n", "ops x", "-o"),
        "hosts[0].ssh_key": ("/home/u/.ssh/id\n", "/k\x1b[2J"),
        "network.management_interface": ("enp5s0\n", "eth0:1", "a" * 16, "br/0", "."),
    }
    for field, values in shaped.items():
        cases += [bad(field, v, project_with(set_config_field(BASE, field, v))) for v in values]
    no_device = desktop_snapshot()
    del no_device["files"][f"{GPU}/device"]
    empty_device = desktop_snapshot()
    empty_device["files"][f"{GPU}/vendor"] = "0x10de\n\n"
    empty_device["files"][f"{GPU}/device"] = "0x\n"
    cases += [
        bad("GPU without device id", f"no {GPU}/device", project_with(BASE, no_device), PLAN_FACTS),
        bad("GPU with device id 0x", "device = 0x", project_with(BASE, empty_device), PLAN_FACTS),
        bad("--facts", "/dev/zero", project_with(BASE), ("plan", "--facts", "/dev/zero")),
        bad("--facts", "a FIFO", _with_fifo_facts, PLAN_FACTS),
        bad("--facts", "a 40 MiB file", _with_big_facts, PLAN_FACTS),
        bad("--facts", "a folder", project_with(BASE), ("plan", "--facts", "{tmp}")),
        bad("affordml.yaml", "Latin-1 bytes", project_with("hosts:\n  - name: caf\xe9\n".encode("latin-1"))),
        bad("affordml.yaml", "a FIFO", lambda s: os.mkfifo(s.project / "affordml.yaml")),
        bad("--project-dir", "path with a newline", None, project=lambda tmp: _folder(tmp / "p\nq")),
        bad("--project-dir", "path with ESC", None, project=lambda tmp: _folder(tmp / "p\x1bq")),
    ]
    return cases


def _duplicate_key_facts(sandbox: Sandbox) -> None:
    project_with(BASE)(sandbox)
    text = DESKTOP.read_text().replace('"format":', '"source": "x",\n "format":', 1)
    Path(sandbox.tmp / "facts.json").write_text(text)


def _with_fifo_facts(sandbox: Sandbox) -> None:
    project_with(BASE)(sandbox)
    os.mkfifo(sandbox.tmp / "facts.json")


def _with_big_facts(sandbox: Sandbox) -> None:
    project_with(BASE)(sandbox)
    with (sandbox.tmp / "facts.json").open("wb") as f:
        f.truncate(40 * 1024**2)


def _folder(path: Path) -> Path:
    path.mkdir(mode=0o700)
    return path
