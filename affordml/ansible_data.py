"""YAML that Ansible reads as data: every string tagged `!unsafe`, so Ansible never templates it (a value like
`{{ lookup('pipe', ...) }}` from a config, a facts file or a path stays the text it is)."""

from __future__ import annotations

import yaml


class UnsafeDumper(yaml.SafeDumper):
    """Every string value as `!unsafe "..."` (double-quoted, escapes for anything unprintable); mapping keys
    are affordml's own variable names and stay plain."""

    def represent_dict(self, data):
        pairs = [(yaml.SafeDumper.represent_str(self, str(k)), self.represent_data(v)) for k, v in data.items()]
        return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=self.default_flow_style)


UnsafeDumper.add_representer(str, lambda dumper, value: dumper.represent_scalar("!unsafe", value, style='"'))
UnsafeDumper.add_representer(dict, UnsafeDumper.represent_dict)


def dump(data, flow: bool = False) -> str:
    """data as YAML for Ansible: a document, or with flow=True one line for a template to embed."""
    return yaml.dump(
        data, Dumper=UnsafeDumper, sort_keys=False, default_flow_style=flow, allow_unicode=True, width=float("inf")
    )


class UnsafeLoader(yaml.SafeLoader):
    """A safe loader that reads the `!unsafe` tag as the plain string it marks (what `dump` wrote)."""


UnsafeLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load(text: str):
    """What `dump` wrote (or any file Ansible reads with `!unsafe` strings), as plain data."""
    return yaml.load(text, Loader=UnsafeLoader)  # noqa: S506 - a safe loader
