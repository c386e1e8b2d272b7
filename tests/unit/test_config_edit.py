"""The one edit add-node makes to affordml.yaml's text: a new hosts item, everything else byte for byte; and the
layouts it refuses. Each result is read back with the project's own loader (parse_user_text)."""

from __future__ import annotations

from pathlib import Path

import pytest

from affordml.config.edit import NotEditable, with_host
from affordml.config.load import parse_user_text

ENTRY = {"name": "pc2", "address": "192.168.1.43", "user": "ops", "ssh_key": "/home/me/.ssh/id: x #y", "port": 2222}
WHERE = Path("affordml.yaml")


def read(text: str) -> dict:
    return parse_user_text(text, WHERE)


def added(old: str) -> str:
    new = with_host(old, ENTRY)
    expected = read(old)
    expected.setdefault("hosts", [{"name": "main"}]).append(ENTRY)
    assert read(new) == expected
    return new


COMMENTED = (
    "# affordml.yaml of the lab   \n"
    + """\
hosts:   # the PCs
  - name: lab1   # the controller
    address: local

  -   name: lab3
      port: 2200 # its sshd

  # - name: old   (kept as a note)
network:
  vm_subnet: 10.42.0.0/24   # keep
gpu: {sharing: mps}
"""
)


def test_the_item_goes_after_the_last_one_and_every_other_line_is_kept():
    new = added(COMMENTED)
    old_lines, new_lines = COMMENTED.splitlines(), new.splitlines()
    at = old_lines.index("      port: 2200 # its sshd") + 1
    assert new_lines[:at] == old_lines[:at] and new_lines[at + 5 :] == old_lines[at:]
    assert new_lines[at : at + 5] == [
        "  - name: pc2",
        "    address: 192.168.1.43",
        "    user: ops",
        "    ssh_key: '/home/me/.ssh/id: x #y'",
        "    port: 2222",
    ]


@pytest.mark.parametrize(
    ("old", "first_new_line"),
    [
        ("hosts:\n- name: main\n", "- name: pc2"),  # items at the key's column
        ("hosts:\n    - name: main\n", "    - name: pc2"),
        ("hosts:\n  -   name: main\n      user: me\n", "  -   name: pc2"),  # the first item's spacing
        ("hosts:\n  -\n    name: main\n", "  - name: pc2"),
        ("---\nhosts:\n  - name: main\n", "  - name: pc2"),
        ("hosts:\n  - name: main\n    ssh_key: |-\n      /a\nml:\n  jupyterhub: false\n", "  - name: pc2"),
        ("hosts:\n  - {name: main, user: me}\nml: {jupyterhub: false}\n", "  - name: pc2"),
        ("hosts:\n  - name: main", "  - name: pc2"),  # no line end at the end of the file
    ],
)
def test_block_lists_in_many_layouts(old, first_new_line):
    new = added(old)
    assert first_new_line in new.splitlines()


def test_crlf_files_keep_their_line_ends():
    old = "# lab\r\nhosts:\r\n  - name: main\r\ngpu:\r\n  sharing: mps\r\n"
    new = added(old)
    assert "\n" not in new.replace("\r\n", "") and new.startswith("# lab\r\nhosts:\r\n  - name: main\r\n  - name: pc2")


@pytest.mark.parametrize("old", ["", "# nothing yet\n", "gpu:\n  sharing: mps  # mine\n", "ml:\n  jupyterhub: false"])
def test_a_file_without_hosts_gains_the_section_with_the_first_pc_spelled_out(old):
    new = added(old)
    assert new.startswith(old.rstrip("\n")) and "hosts:\n  - name: main\n  - name: pc2\n" in new


@pytest.mark.parametrize(
    ("old", "why"),
    [
        ("hosts: [{name: main}]\n", "not a block list"),
        ("hosts: []\n", "not a block list"),
        ("hosts:\n", "not a block list"),
        ("{hosts: [{name: main}]}\n", "top level is not a block mapping"),
        ("hosts: &pcs\n  - name: main\n", "anchors or aliases"),
        ("hosts:\n  - &first\n    name: main\n  - <<: *first\n    name: pc3\n", "anchors or aliases"),
        ("hosts:\n  - name: main\n  bad: [\n", "not valid YAML"),
    ],
)
def test_layouts_it_cannot_edit_safely_are_refused(old, why):
    with pytest.raises(NotEditable, match=why):
        with_host(old, ENTRY)


def test_anchors_elsewhere_in_the_file_do_not_stop_the_edit():
    old = "hosts:\n  - name: main\ngpu:\n  sharing: &s {mode: mps}\n  per_gpu:\n    0000:01:00.0: *s\n"
    assert "  - name: pc2" in added(old)


def test_values_that_yaml_would_read_otherwise_are_quoted():
    for value in ("yes", "0x10", "~/key", "null", "a #b", "- x", "'q'", "1.5"):
        entry = {"name": "pc2", "address": "h.example", "ssh_key": value}
        assert read(with_host("hosts:\n  - name: main\n", entry))["hosts"][1]["ssh_key"] == value
