"""One edit of the user's affordml.yaml text: a new item at the end of its block-style `hosts:` list, everything
else (comments, order, quoting, blank lines) left byte for byte as the user wrote it.

Pure text in, text out. The caller re-reads the result with the project's own loader and keeps it only when it
holds the old values plus exactly the new host; whatever this module cannot edit safely (flow style, anchors and
aliases, a root that is not a block mapping) raises NotEditable, and the caller shows the lines to paste."""

from __future__ import annotations

import yaml

FIRST_HOST = "main"  # the first PC's name when affordml.yaml has no hosts (Config's default)


class NotEditable(Exception):
    """The text cannot be edited safely; the message says why, in a few words."""


def with_host(text: str, entry: dict) -> str:
    """`text` with `entry` (name first) as the last item of hosts; a missing hosts section is added with the
    default first host spelled out before the new one."""
    newline = "\r\n" if "\r\n" in text else "\n"
    root = _root(text)
    hosts = _hosts_node(root)
    if hosts is None:
        return _appended(text, newline, section_lines({"name": FIRST_HOST}, entry))
    key, value = hosts
    _refuse_anchors(text, key.start_mark.index, value.end_mark.index)
    if not isinstance(value, yaml.SequenceNode) or value.flow_style or not value.value:
        raise NotEditable("hosts is not a block list (`- name: ...` items)")
    lines = text.splitlines(keepends=True)
    after = _last_line(value.value[-1]) + 1
    dash = value.start_mark.column
    if not lines[after - 1].endswith(("\n", "\r")):
        lines[after - 1] += newline  # the file's last line had no line end
    lines[after:after] = [line + newline for line in item_lines(entry, dash, _key_offset(value))]
    return "".join(lines)


def section_lines(*entries: dict) -> list[str]:
    """A whole `hosts:` section holding these entries (also what the user is asked to paste)."""
    lines = ["hosts:"]
    for entry in entries:
        lines += item_lines(entry, 2, 2)
    return lines


def item_lines(entry: dict, dash: int, offset: int) -> list[str]:
    """One list item: `- name: x` at column `dash`, the other keys `offset` columns to its right."""
    lines = []
    for number, (key, value) in enumerate(entry.items()):
        lead = " " * dash + "-" + " " * (offset - 1) if number == 0 else " " * (dash + offset)
        lines.append(f"{lead}{key}: {scalar(value)}")
    return lines


def scalar(value) -> str:
    """A value as YAML writes it on one line: plain when that reads back the same, quoted otherwise."""
    dumped = yaml.safe_dump({"k": value}, width=2**31, allow_unicode=True, default_flow_style=False)
    return dumped.removeprefix("k: ").removesuffix("\n")


def _root(text: str):
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        raise NotEditable("it is not valid YAML") from None
    if root is not None and (not isinstance(root, yaml.MappingNode) or root.flow_style):
        raise NotEditable("its top level is not a block mapping (`section:` lines)")
    return root


def _hosts_node(root) -> tuple | None:
    if root is None:
        return None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "hosts":
            return key, value
    return None


def _refuse_anchors(text: str, start: int, end: int) -> None:
    """Anchors and aliases make one item stand for another: an edit could change more than it shows."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if start <= event.start_mark.index <= end and (
            isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None)
        ):
            raise NotEditable("hosts uses YAML anchors or aliases (& or *)")


def _last_line(node) -> int:
    """The last line that holds a value of this node (trailing comments and blank lines are not part of it)."""
    if isinstance(node, yaml.ScalarNode) or getattr(node, "flow_style", False):
        end = node.end_mark
        return end.line if end.column > 0 else end.line - 1
    if isinstance(node, yaml.MappingNode):
        return max(_last_line(part) for pair in node.value for part in pair) if node.value else node.start_mark.line
    return max(_last_line(item) for item in node.value) if node.value else node.start_mark.line


def _key_offset(sequence) -> int:
    """Columns from an item's dash to its keys, as the first item has them (`- name` gives 2, `-   name` 4)."""
    first = sequence.value[0]
    if first.start_mark.line == sequence.start_mark.line and isinstance(first, yaml.MappingNode):
        return max(first.start_mark.column - sequence.start_mark.column, 2)
    return 2


def _appended(text: str, newline: str, lines: list[str]) -> str:
    if text and not text.endswith(("\n", "\r")):
        text += newline
    return text + "".join(line + newline for line in lines)
