"""Layered config: package defaults <- the user's affordml.yaml <- AFFORDML_SECTION__KEY environment overrides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from affordml import textfile
from affordml.config.model import Config
from affordml.errors import ConfigError

ENV_PREFIX = "AFFORDML_"
CONFIG_LIMIT = 1024**2  # an affordml.yaml is a few KiB


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (YAML would silently keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise DuplicateKey(key, key_node.start_mark.line + 1, seen[key])
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key, line: int, first_line: int) -> None:
        super().__init__(f"key {key!r} at line {line} is already set at line {first_line}")
        self.key, self.line, self.first_line = key, line, first_line


def read_user_file(path: Path) -> dict:
    """The values the user wrote, as a dict ({} when the file does not exist)."""
    try:
        text = textfile.read_text(path, CONFIG_LIMIT)
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start : exc.start + 1]!r})",
            "save the file as UTF-8 (plain text)",
        ) from None
    except textfile.NotRegularFile:
        raise ConfigError(f"{path} is not a regular file", "point at an affordml.yaml file") from None
    except textfile.TooLarge:
        raise ConfigError(f"{path} is larger than {CONFIG_LIMIT // 1024**2} MiB", "point at an affordml.yaml") from None
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read ({exc.strerror or exc})", "check the file's permissions") from None
    return parse_user_text(text, path)


def parse_user_text(text: str, path: Path) -> dict:
    """The values of an affordml.yaml's text, as a dict ({} for an empty file); `path` names it in errors."""
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except DuplicateKey as exc:
        raise ConfigError(
            f"{path}: key {exc.key!r} at line {exc.line} is already set at line {exc.first_line}",
            "keep one of them: YAML would silently use the last",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML{where}", "fix the syntax (indentation, colons)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must hold a mapping of sections (hosts, network, vms, gpu, ml)",
            "see `affordml config init` for the layout",
        )
    return data


def env_overrides(environ: Mapping[str, str]) -> dict:
    """AFFORDML_GPU__SHARING__MODE=mps -> {"gpu": {"sharing": {"mode": "mps"}}}; values parse as YAML scalars."""
    result: dict = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name} conflicts with another override", "unset one")
        node[path[-1]] = value
    return result


def deep_merge(base: dict, top: dict) -> dict:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def validate(data: dict, origin: str) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(*describe_validation_error(exc, origin)) from None


def describe_validation_error(exc: ValidationError, origin: str) -> tuple[str, str]:
    """One line naming the first bad field, and a fix."""
    first = exc.errors()[0]
    path = ".".join(str(p) for p in first["loc"] if not _is_union_tag(p))
    message = first["msg"].removeprefix("Value error, ")
    more = len(exc.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    if first["type"] == "extra_forbidden":
        message = "unknown key"
        fix = f"remove or rename {path!r}; `affordml config init --print` lists every key"
    elif first["type"] == "union_tag_invalid":
        fix = "use one of: auto, exclusive, time-slicing, mps, mig, hami"
    else:
        fix = f"correct {path!r} in {origin}"
    where = f"{origin}: {path}" if path else origin
    if not path:
        fix = f"correct it in {origin}"
    return f"{where}: {message}{tail}", fix


def _is_union_tag(part) -> bool:
    return part in ("auto", "exclusive", "time-slicing", "mps", "mig", "hami")


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    user = read_user_file(path)
    overrides = env_overrides(os.environ if environ is None else environ)
    if overrides:
        try:
            return Config.model_validate(deep_merge(user, overrides))
        except ValidationError as exc:
            problem, fix = describe_validation_error(exc, f"{path} + AFFORDML_* environment")
            raise ConfigError(problem, fix) from None
    return validate(user, str(path))
