"""Hostile and careless values through the real CLI: duplicate keys, names with a trailing newline, payloads in
shaped fields, facts without a device id, /dev/zero and FIFOs as facts, non-UTF-8 config, and names from a facts
file that hold Rich markup or terminal escapes. Each bad input gives ONE stderr line naming the field and a fix;
text from a facts file is printed as text."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.hostile import FACTS_FIELDS, GPU, desktop_snapshot, hostile_snapshot, payloads

from .conftest import FIXTURES
from .test_bad_input import assert_one_line

DESKTOP = FIXTURES / "desktop-rtx4090.json"
MARKUP_NAME = "[bold red]EVIL[/bold red] [link=https://example.invalid]click[/link]"


def write_facts(tmp_path, snap: dict, name: str = "facts.json"):
    path = tmp_path / name
    path.write_text(json.dumps(snap))
    return path


def gpu_named(name: str) -> dict:
    snap = desktop_snapshot()
    snap["commands"]["nvidia-smi -q -x"] = snap["commands"]["nvidia-smi -q -x"].replace(
        "<product_name>NVIDIA GeForce RTX 4090</product_name>", f"<product_name>{name}</product_name>", 1
    )
    return snap


def test_duplicate_key_in_config_names_key_and_line(cli):
    cli.project.mkdir()
    (cli.project / "affordml.yaml").write_text(
        "hosts:\n  - name: a\nml:\n  jupyterhub: false\nml:\n  inference: false\n"
    )
    assert_one_line(cli("plan", "--facts", DESKTOP), ["'ml'", "line 5", "line 3"], 2)


def test_duplicate_nested_key_in_config(cli):
    cli.project.mkdir()
    (cli.project / "affordml.yaml").write_text("hosts:\n  - name: a\n    name: b\n")
    assert_one_line(cli("plan", "--facts", DESKTOP), ["'name'", "line 3"], 2)


def test_duplicate_key_in_facts_file(cli, tmp_path):
    path = tmp_path / "facts.json"
    text = DESKTOP.read_text()
    path.write_text(text.replace('"format":', '"source": "twice",\n "format":', 1))
    assert_one_line(cli("plan", "--facts", path), ["'source'", "twice"], 3)


@pytest.mark.parametrize("value", ["main\n", "main\r", "Main", "main.lan"])
def test_host_name_must_match_whole(cli, value):
    cli.project.mkdir()
    (cli.project / "affordml.yaml").write_text(json.dumps({"hosts": [{"name": value}]}))
    assert_one_line(cli("plan", "--facts", DESKTOP), ["hosts.0.name"], 2)


@pytest.mark.parametrize("kind", sorted(payloads("m")))
@pytest.mark.parametrize("field", ["address", "user", "name"])
def test_payload_in_a_host_field_is_refused(cli, tmp_path, field, kind):
    marker = tmp_path / "marker"
    host = {"name": "main", "address": "192.0.2.10", field: payloads(str(marker))[kind]}
    cli.project.mkdir()
    (cli.project / "affordml.yaml").write_text(json.dumps({"hosts": [host]}))
    assert_one_line(cli("plan", "--facts", DESKTOP), [f"hosts.0.{field}"], 2)
    assert not list(tmp_path.glob("marker*"))


def test_gpu_without_device_id_is_refused_not_planned(cli, tmp_path):
    snap = desktop_snapshot()
    del snap["files"][f"{GPU}/device"]
    result = cli("plan", "--facts", write_facts(tmp_path, snap))
    assert_one_line(result, ["pci_devices[0000:01:00.0].device_id", "is missing"], 3)
    assert "10de:" not in result.out and "vfio-pci" not in result.out


def test_dev_zero_as_facts_is_refused_at_once(cli):
    started = time.monotonic()
    assert_one_line(cli("plan", "--facts", "/dev/zero"), ["/dev/zero", "not a regular file"], 3)
    assert time.monotonic() - started < 30


def test_fifo_as_facts_does_not_hang(cli, tmp_path):
    fifo = tmp_path / "facts.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert_one_line(cli("plan", "--facts", fifo), ["not a regular file"], 3)
    assert time.monotonic() - started < 30


def test_oversized_facts_file_is_refused(cli, tmp_path):
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(40 * 1024**2)  # sparse: costs no disk
    assert_one_line(cli("plan", "--facts", big), ["larger than 32 MiB"], 3)


def test_fifo_as_config_does_not_hang(cli):
    cli.project.mkdir()
    os.mkfifo(cli.project / "affordml.yaml")
    assert_one_line(cli("plan", "--facts", DESKTOP), ["affordml.yaml", "not a regular file"], 2)


def test_non_utf8_config_says_utf8_not_permissions(cli):
    cli.project.mkdir()
    (cli.project / "affordml.yaml").write_bytes("hosts:\n  - name: caf\xe9\n".encode("latin-1"))
    result = cli("plan", "--facts", DESKTOP)
    assert_one_line(result, ["UTF-8"], 2)
    assert "permission" not in result.err


def test_project_dir_with_a_newline_is_refused(cli, tmp_path):
    result = cli("plan", "--facts", DESKTOP, project_dir=tmp_path / "p\nq")
    assert_one_line(result, ["--project-dir", "control characters"], 2)


@pytest.mark.parametrize("command", ["facts", "plan", "doctor"])
def test_markup_in_a_gpu_name_is_printed_as_text(cli, tmp_path, command):
    result = cli(command, "--facts", write_facts(tmp_path, gpu_named(MARKUP_NAME)))
    assert MARKUP_NAME in result.out, result.out + result.err
    assert "\x1b" not in result.out


def field(name: str):
    return next(f for f in FACTS_FIELDS if f.name == name)


@pytest.mark.parametrize(
    "text", ["\x1b[2J\x1b[31mUbuntu", "Ubuntu\x1b]8;;https://example.invalid\x07x", "Ubuntu\u202eevil", "Ubuntu\x9b31m"]
)
@pytest.mark.parametrize("where", ["os.pretty_name", "cpu.model", "hostname"])
def test_escape_sequences_in_facts_are_refused_and_not_echoed(cli, tmp_path, where, text):
    snap = hostile_snapshot([field(where)], lambda f: text)
    result = cli("facts", "--facts", write_facts(tmp_path, snap))
    assert_one_line(result, ["control characters"], 3)
    assert where.split(".")[-1] in result.err
    assert not any(c in result.err + result.out for c in "\x1b\x07\x9b\u202e")
    assert "\\x1b" in result.err or "\\x9b" in result.err or "\\u202e" in result.err
