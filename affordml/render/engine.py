"""Render the project's env/ folder from the plan: disposable, rewritten on each run, stamped."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from affordml import ansible_data
from affordml.errors import ConfigError
from affordml.resources import data_dir

STAMP = ".affordml-env.yaml"


@dataclass(frozen=True)
class Output:
    template: str
    target: str  # relative to env/
    when: str = "always"  # always | gpu | jupyterhub | training_queue | inference | monitoring | hami
    reader: str = "ansible"  # ansible: YAML that Ansible loads | helm: chart values | ini: kolla's merged config


OUTPUTS: tuple[Output, ...] = (
    Output("affordml/inventory.yml.j2", "inventory/hosts.yml"),
    Output("affordml/plan-vars.yml.j2", "vars/plan.yml"),
    Output("kolla/globals.yml.j2", "kolla/globals.yml"),
    Output("kolla/nova-compute.conf.j2", "kolla/config/nova/nova-compute.conf", "gpu", "ini"),
    Output("kolla/nova-api.conf.j2", "kolla/config/nova/nova-api.conf", "gpu", "ini"),
    Output("kolla/nova-scheduler.conf.j2", "kolla/config/nova/nova-scheduler.conf", "gpu", "ini"),
    Output("kubespray/inventory.yml.j2", "kubespray/inventory.yml"),
    Output("kubespray/k8s-cluster.yml.j2", "kubespray/group_vars/k8s_cluster/k8s-cluster.yml"),
    Output("kubespray/addons.yml.j2", "kubespray/group_vars/k8s_cluster/addons.yml"),
    Output("kubespray/all.yml.j2", "kubespray/group_vars/all/all.yml"),
    Output("gpu/gpu-operator-values.yaml.j2", "gpu/gpu-operator-values.yaml", "gpu", "helm"),
    Output("gpu/device-plugin-config.yaml.j2", "gpu/device-plugin-config.yaml", "gpu", "helm"),
    Output("gpu/node-labels.yaml.j2", "gpu/node-labels.yaml", "gpu", "helm"),
    Output("gpu/hami-values.yaml.j2", "gpu/hami-values.yaml", "hami", "helm"),
    Output("ml/jupyterhub-values.yaml.j2", "ml/jupyterhub-values.yaml", "jupyterhub", "helm"),
    Output("ml/kueue-queues.yaml.j2", "ml/kueue-queues.yaml", "training_queue", "helm"),
    Output("ml/kueue-values.yaml.j2", "ml/kueue-values.yaml", "training_queue", "helm"),
    Output("ml/kube-prometheus-stack-values.yaml.j2", "ml/kube-prometheus-stack-values.yaml", "monitoring", "helm"),
    Output("ml/kserve-values.yaml.j2", "ml/kserve-values.yaml", "inference", "helm"),
    Output("ml/cert-manager-values.yaml.j2", "ml/cert-manager-values.yaml", "inference", "helm"),
    Output("ml/serving-sample.yaml.j2", "ml/serving-sample.yaml", "inference", "helm"),
)


def applies(output: Output, context: dict) -> bool:
    plan = context["plan"]
    if output.when == "always":
        return True
    if output.when == "gpu":
        return bool(plan.gpus)
    if output.when == "hami":
        return any(g.sharing.mode == "hami" for g in plan.gpus)
    return bool(context["ml"].get(output.when))


# What a bare `{{ value }}` may print: a plain YAML/INI token (names, numbers, versions, PCI ids, JSON of
# validated ids). Anything else, above all user or host text, must go through `quote` or `to_yaml`.
BARE_VALUE = re.compile(r'[A-Za-z0-9_.:/@+,=-]*|\{"[A-Za-z0-9_.:@+," -]*\}')


class Quoted(str):
    """Text that a filter already wrote as a YAML scalar or flow collection."""


def _double_quoted(value) -> str:
    return yaml.safe_dump(str(value), default_style='"', allow_unicode=True, width=float("inf")).rstrip("\n")


def _filters(reader: str) -> dict:
    """quote and to_yaml for a file's reader: for Ansible every string is !unsafe (data, never a template)."""
    if reader == "ansible":
        return {
            "quote": lambda value: Quoted(ansible_data.dump(str(value), flow=True).strip()),
            "to_yaml": lambda value: Quoted(ansible_data.dump(value, flow=True).strip()),
        }
    return {
        "quote": lambda value: Quoted(_double_quoted(value)),
        "to_yaml": lambda value: Quoted(
            yaml.safe_dump(
                value, sort_keys=False, default_flow_style=True, allow_unicode=True, width=float("inf")
            ).strip()
        ),
    }


def _bare(value):
    """Jinja's finalize: a value printed without quote/to_yaml must be a plain token, or rendering stops."""
    if isinstance(value, Quoted):
        return value
    text = str(value)
    if not BARE_VALUE.fullmatch(text):
        raise UnquotedValue(text)
    return text


class UnquotedValue(Exception):
    """A template printed free text without quoting it: a bug in the template."""


def environment(template_dir: Path | None = None, reader: str = "ansible"):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir or data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        finalize=_bare,
    )
    env.filters.update(_filters(reader))
    return env


def render_files(context: dict, template_dir: Path | None = None) -> dict[str, str]:
    """Every output's text, keyed by its path under env/ (pure apart from reading templates)."""
    import jinja2

    envs = {reader: environment(template_dir, reader) for reader in ("ansible", "helm", "ini")}
    files = {}
    for output in OUTPUTS:
        if not applies(output, context):
            continue
        try:
            files[output.target] = envs[output.reader].get_template(output.template).render(**context)
        except jinja2.UndefinedError as exc:
            raise ConfigError(
                f"Missing configuration value while rendering {output.template}: {exc.message}",
                "this is a bug in affordml's templates or plan; report it with `affordml plan --json`",
            ) from None
        except UnquotedValue as exc:
            raise ConfigError(
                f"{output.template} prints {str(exc)[:60]!r} without quoting it",
                "this is a bug in affordml's templates; report it with `affordml plan --json`",
            ) from None
    files |= _node_files(context, envs["ini"])
    files[STAMP] = yaml.safe_dump(
        {"affordml_version": context["affordml_version"], "plan_hash": context["plan_hash"], "files": sorted(files)},
        sort_keys=False,
    )
    return files


def _node_files(context: dict, ini) -> dict[str, str]:
    """nova-compute's PCI config of each PC added with `affordml add-node`, where kolla merges it for that host
    only (nova/<inventory name>/nova-compute.conf): its own GPUs by address, the platform's aliases."""
    import json

    files = {}
    for node in context["plan"].nodes:
        if node.nova_device_specs:
            kolla = context["kolla"] | {"device_specs": [json.dumps(spec) for spec in node.nova_device_specs]}
            text = ini.get_template("kolla/nova-compute.conf.j2").render(**context | {"kolla": kolla})
            files[f"kolla/config/nova/{node.host}/nova-compute.conf"] = text
    return files


ENV_FILE_MODE = 0o644  # rendered settings, no secrets; env/ and its folders are 0700


def write_env(env_dir: Path, files: dict[str, str]) -> None:
    """Replace env/ as a whole: write into a fresh folder beside it, then swap (a crash never leaves half).
    An env/ that affordml did not render (no valid stamp inside, e.g. a virtualenv) is never replaced."""
    from affordml import safefile

    root, name = env_dir.parent, env_dir.name
    with safefile.folder(root, create=True) as parent:
        _refuse_foreign_env(parent, env_dir)
        staging = _fresh_name(parent, ".env-new-")
        os.mkdir(staging, 0o700, dir_fd=parent)
        try:
            for rel, text in files.items():
                safefile.write_text(root, Path(staging) / rel, text, ENV_FILE_MODE)
            old = None
            if _exists(parent, name):
                old = _fresh_name(parent, ".env-old-")
                os.rename(name, old, src_dir_fd=parent, dst_dir_fd=parent)
            os.rename(staging, name, src_dir_fd=parent, dst_dir_fd=parent)
            staging = None
            if old:
                shutil.rmtree(old, dir_fd=parent)
        finally:
            if staging:
                shutil.rmtree(staging, dir_fd=parent, ignore_errors=True)


def _refuse_foreign_env(parent: int, env_dir: Path) -> None:
    import stat

    from affordml.errors import UnsafeFile

    try:
        info = os.stat(env_dir.name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    fix = f"move it aside (`mv {env_dir} {env_dir}.moved`), or choose another project folder with -p"
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFile(f"{env_dir} is a symbolic link; affordml renders env/ only as a folder of its own", fix)
    if not stat.S_ISDIR(info.st_mode) or read_stamp(env_dir) is None:
        raise UnsafeFile(
            f"{env_dir} exists and was not rendered by affordml (no valid {STAMP} inside); it was left as it is", fix
        )


def _fresh_name(parent: int, prefix: str) -> str:
    import secrets

    while True:
        name = prefix + secrets.token_hex(6)
        if not _exists(parent, name):
            return name


def _exists(parent: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def read_stamp(env_dir: Path) -> dict | None:
    """env/'s stamp when it is affordml's own (a mapping with a version and a plan hash), else None."""
    from affordml.errors import UnsafeFile
    from affordml.safefile import read_text

    try:
        text = read_text(env_dir.parent, Path(env_dir.name) / STAMP)
        stamp = yaml.safe_load(text) if text is not None else None
    except (UnsafeFile, yaml.YAMLError):
        return None
    keys = ("affordml_version", "plan_hash")
    if not isinstance(stamp, dict) or not all(_plain(stamp.get(k)) for k in keys):
        return None
    return stamp


def _plain(value) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool) and str(value) != ""
