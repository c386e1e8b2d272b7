"""Values are data: a Jinja or shell payload in any string field of affordml.yaml or of a facts snapshot is either
refused by validation (the field has a shape: address, user, interface, PCI id...) or carried into the rendered
files as data that Ansible's own loader and templar leave alone. Each payload touches a marker file if evaluated;
no marker may appear. (The real host phase over these values: tests/integration/hosts/test_hostile_values_*.)"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from affordml.config.model import Config
from affordml.errors import FactsError
from affordml.facts.parse import facts_from_snapshot
from affordml.facts.snapshot import Snapshot
from affordml.plan.build import make_plan
from affordml.render.context import build_context
from affordml.render.engine import OUTPUTS, render_files
from affordml.render.kolla_inventory import host_line
from affordml.versions import load_lock, version_table
from tests.hostile import CONFIG_FREE_TEXT, CONFIG_SHAPED, FACTS_FIELDS, hostile_snapshot, payloads, set_config_field

KINDS = tuple(payloads("m"))
BASE_CONFIG = {"hosts": [{"name": "ryzen-4090", "address": "192.0.2.10", "user": "ops"}]}


@pytest.fixture
def marker(tmp_path: Path) -> str:
    return str(tmp_path / f"marker-{uuid.uuid4().hex[:8]}")


def markers_left(marker: str) -> list[str]:
    folder = Path(marker).parent
    return sorted(p.name for p in folder.glob(Path(marker).name + "*"))


def render_hostile(config: dict, snap: dict) -> tuple[Config, dict[str, str]]:
    facts = facts_from_snapshot(Snapshot.from_dict(snap))
    cfg = Config.model_validate(config)
    lock = load_lock()
    plan = make_plan(facts, cfg, version_table(lock))
    return cfg, render_files(build_context(plan, cfg, lock))


def template_with_ansible(files: dict[str, str], tmp_path: Path) -> list[str]:
    """Load every file Ansible reads with Ansible's loader (trusted, as vars files are), template the whole of it
    with Ansible's templar, and return the strings that still hold a payload but came back changed."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    loader = DataLoader()
    changed = []
    for output in OUTPUTS:
        if output.reader != "ansible" or output.target not in files:
            continue
        path = tmp_path / output.target.replace("/", "_")
        path.write_text(files[output.target])
        data = loader.load_from_file(str(path), cache="none", trusted_as_template=True)
        strings = list(_strings(data))
        templar = Templar(loader=loader, variables={})
        for value in strings:
            if "touch" in value and templar.template(value) != value:
                changed.append(f"{output.target}: {value!r}")
    return changed


def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


@pytest.mark.parametrize("kind", KINDS)
def test_free_text_payloads_everywhere_render_as_inert_data(kind, marker, tmp_path):
    """Every free-text field of the config and of the facts holds a payload at once; Ansible's templar runs over
    every rendered string it would read, and nothing runs."""
    values = payloads(marker)
    config = BASE_CONFIG
    for field in CONFIG_FREE_TEXT:
        config = set_config_field(config, field, values[kind] + f"-{field}")
    snap = hostile_snapshot([f for f in FACTS_FIELDS if f.free_text], lambda f: values[kind])
    cfg, files = render_hostile(config, snap)

    assert cfg.hosts[0].ssh_key == values[kind] + "-hosts[0].ssh_key"  # carried, unchanged
    assert cfg.cloud.external_network == values[kind] + "-cloud.external_network"
    text = "\n".join(files.values())
    assert "touch" in files["inventory/hosts.yml"]  # the key path reaches Ansible...
    assert "touch" in files["ml/jupyterhub-values.yaml"]  # ...and the GPU's name the notebook profiles
    assert template_with_ansible(files, tmp_path) == []  # ...as data
    assert "{{" not in text or kind.startswith("jinja")
    assert markers_left(marker) == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("field", CONFIG_SHAPED)
def test_shaped_config_fields_refuse_payloads(field, kind, marker):
    config = set_config_field(BASE_CONFIG, field, payloads(marker)[kind])
    with pytest.raises(ValidationError) as caught:
        Config.model_validate(config)
    where = ".".join(str(p) for p in caught.value.errors()[0]["loc"])
    assert where.split(".")[0] == field.split(".")[0].split("[")[0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("field", [f for f in FACTS_FIELDS if not f.free_text], ids=lambda f: f.name)
def test_shaped_facts_fields_refuse_payloads(field, kind, marker):
    snap = hostile_snapshot([field], lambda f: payloads(marker)[kind])
    with pytest.raises(FactsError) as caught:
        facts_from_snapshot(Snapshot.from_dict(snap))
    assert "collect the facts again" in caught.value.fix


@pytest.mark.parametrize(
    "value",
    ["192.0.2.10\n", "main\n", "10.0.0.1 ansible_ssh_common_args=-oProxyCommand=x", "a b", "", "-oProxyCommand=x"],
)
def test_addresses_users_and_names_use_fullmatch(value):
    for field in ("hosts[0].address", "hosts[0].user", "hosts[0].name"):
        with pytest.raises(ValidationError):
            Config.model_validate(set_config_field(BASE_CONFIG, field, value))


def test_kolla_ini_host_line_keeps_a_spaced_value_as_one_value(tmp_path):
    """Even a value validation would refuse cannot add settings: Ansible's own INI inventory parser reads the
    quoted value back whole."""
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import inventory_loader

    from affordml.config.model import Host

    sneaky = "10.0.0.6 ansible_ssh_common_args='-oProxyCommand=touch /tmp/x' # "
    host = Host.model_construct(name="pc2", address=sneaky, user="ops x=1", port=22, ssh_key=None)
    path = tmp_path / "inventory.ini"
    path.write_text("[compute]\n" + host_line(host, controller=False) + "\n")
    inventory = InventoryData()
    inventory_loader.get("ini").parse(inventory, DataLoader(), str(path), cache=False)
    hostvars = inventory.get_host("pc2").vars
    assert hostvars["ansible_host"] == sneaky
    assert hostvars["ansible_user"] == "ops x=1"
    assert "ansible_ssh_common_args" not in hostvars and "x" not in hostvars


@pytest.mark.parametrize("value", ["a {{ b }}", "x: y", "a\nb", "enp5s0 # c", "{% raw %}"])
def test_a_template_cannot_print_free_text_unquoted(tmp_path, value):
    """Jinja's finalize stops a bare `{{ value }}` that is not a plain token; through `quote` it is data."""
    from affordml.render.engine import UnquotedValue, environment

    (tmp_path / "t.j2").write_text("k: {{ v }}\n")
    (tmp_path / "q.j2").write_text("k: {{ v | quote }}\n")
    env = environment(tmp_path, "ansible")
    with pytest.raises(UnquotedValue):
        env.get_template("t.j2").render(v=value)
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    assert yaml.load(env.get_template("q.j2").render(v=value), Loader=Loader) == {"k": value}  # noqa: S506
