"""Bad configs and bad facts files through the real CLI: a non-zero exit, ONE line on stderr that names the field
or the check, with its fix, and never a traceback."""

from __future__ import annotations

import json
import os

import pytest

from .conftest import FIXTURES

DESKTOP = FIXTURES / "desktop-rtx4090.json"
A100 = FIXTURES / "server-a100-mig.json"

# id -> (affordml.yaml text, facts file, words the error line must hold, exit code)
BAD_CONFIGS = {
    "unknown-top-level-key": ("gpus:\n  sharing: mps\n", DESKTOP, ["gpus", "unknown key"], 2),
    "unknown-nested-key": ("vms:\n  workers:\n    memory: 8\n", DESKTOP, ["vms.workers.memory", "unknown key"], 2),
    "wrong-type-count": ("vms:\n  workers:\n    count: two\n", DESKTOP, ["vms.workers.count"], 2),
    "wrong-type-bool": ("ml:\n  jupyterhub: perhaps\n", DESKTOP, ["ml.jupyterhub"], 2),
    "bool-as-size": ("vms:\n  workers:\n    vcpus: true\n", DESKTOP, ["vms.workers.vcpus"], 2),
    "zero-size": ("vms:\n  control_plane:\n    ram_gib: 0\n", DESKTOP, ["vms.control_plane.ram_gib"], 2),
    "two-control-planes": ("vms:\n  control_plane:\n    count: 2\n", DESKTOP, ["vms.control_plane"], 2),
    "too-many-workers": ("vms:\n  workers:\n    count: 17\n", DESKTOP, ["vms.workers.count"], 2),
    "subnet-not-cidr": ("network:\n  vm_subnet: 10.42.0.0/33\n", DESKTOP, ["network.vm_subnet", "CIDR"], 2),
    "subnet-host-bits": ("network:\n  vm_subnet: 10.42.0.1/24\n", DESKTOP, ["network.vm_subnet"], 2),
    "subnet-too-small": ("network:\n  vm_subnet: 10.42.0.0/30\n", DESKTOP, ["network.vm_subnet", "/28"], 2),
    "subnet-ipv6": ('network:\n  external_subnet: "fd00::/64"\n', DESKTOP, ["network.external_subnet"], 2),
    "floating-ips-out-of-range": ("network:\n  floating_ip_count: 0\n", DESKTOP, ["network.floating_ip_count"], 2),
    "floating-ips-do-not-fit": (
        "network:\n  external_subnet: 198.51.100.0/28\n  floating_ip_count: 20\n",
        DESKTOP,
        ["network.floating_ip_count", "198.51.100.0/28"],
        4,
    ),
    "bad-pci-address-exclude": ('gpu:\n  exclude: ["01:00.0"]\n', DESKTOP, ["gpu.exclude", "PCI address"], 2),
    "bad-pci-address-per-gpu": ('gpu:\n  per_gpu:\n    "1:0.0": mps\n', DESKTOP, ["gpu.per_gpu", "PCI address"], 2),
    "unknown-sharing-mode": ("gpu:\n  sharing: bogus\n", DESKTOP, ["gpu.sharing", "bogus"], 2),
    "mig-on-a-non-mig-card": ("gpu:\n  sharing: mig\n", DESKTOP, ["gpu.sharing", "MIG-capable"], 4),
    "mig-per-gpu-on-a-non-mig-card": (
        'gpu:\n  per_gpu:\n    "0000:01:00.0": mig\n',
        DESKTOP,
        ["gpu.per_gpu.0000:01:00.0", "MIG-capable"],
        4,
    ),
    "unknown-mig-layout": ("gpu:\n  sharing:\n    mode: mig\n    layout: all-9g.1tb\n", A100, ["all-9g.1tb"], 4),
    "replicas-out-of-range": (
        "gpu:\n  sharing:\n    mode: time-slicing\n    replicas: 1\n",
        DESKTOP,
        ["gpu.sharing.replicas"],
        2,
    ),
    "mps-clients-out-of-range": ("gpu:\n  sharing:\n    mode: mps\n    clients: 99\n", DESKTOP, ["clients"], 2),
    "hami-percent-out-of-range": (
        "gpu:\n  sharing:\n    mode: hami\n    memory_percent: 101\n",
        DESKTOP,
        ["gpu.sharing.memory_percent"],
        2,
    ),
    "option-of-another-mode": ("gpu:\n  sharing:\n    mode: mps\n    replicas: 4\n", DESKTOP, ["replicas"], 2),
    "duplicate-hosts": (
        "hosts:\n  - name: pc\n  - name: pc\n    address: 192.168.1.9\n",
        DESKTOP,
        ["hosts", "unique", "pc"],
        2,
    ),
    "second-local-host": ("hosts:\n  - name: a\n  - name: b\n", DESKTOP, ["hosts", "local"], 2),
    "bad-host-name": ("hosts:\n  - name: My_PC\n", DESKTOP, ["hosts.0.name"], 2),
    "no-hosts": ("hosts: []\n", DESKTOP, ["hosts"], 2),
    "bad-port": ("hosts:\n  - name: pc\n    port: 70000\n", DESKTOP, ["hosts.0.port"], 2),
    "yaml-syntax-error": ("vms:\n  workers: [1\n", DESKTOP, ["not valid YAML", "line"], 2),
    "yaml-tab-indent": ("vms:\n\tworkers: 1\n", DESKTOP, ["not valid YAML"], 2),
    "not-a-mapping": ("- hosts\n- vms\n", DESKTOP, ["mapping"], 2),
    "external-is-management-nic": (
        "network:\n  external_interface: enp5s0\n",
        DESKTOP,
        ["network.external_interface", "management NIC"],
        4,
    ),
    "external-has-an-address": (
        "network:\n  external_interface: eno2\n",
        A100,
        ["network.external_interface", "eno2"],
        4,
    ),
    "unknown-external-nic": ("network:\n  external_interface: eth7\n", DESKTOP, ["network.external_interface"], 4),
    "unknown-management-nic": (
        "network:\n  management_interface: wlan0\n",
        DESKTOP,
        ["network.management_interface", "wlan0"],
        4,
    ),
    "workers-do-not-fit": ("vms:\n  workers:\n    ram_gib: 64\n", DESKTOP, ["GiB RAM", "vms.workers.count"], 4),
    "no-worker-for-the-gpu": ("vms:\n  workers:\n    count: 0\n", DESKTOP, ["vms.workers.count"], 4),
    "too-small-host": ("", FIXTURES / "too-small.json", ["RAM"], 4),
    "gpu-not-isolatable": ("", FIXTURES / "shared-iommu-group.json", ["IOMMU group 8", "gpu-isolatable"], 4),
}


def write_config(cli, text: str) -> None:
    cli.project.mkdir(parents=True, exist_ok=True)
    (cli.project / "affordml.yaml").write_text(text)


def assert_one_line(result, words, rc=None):
    assert result.rc != 0, result.out
    if rc is not None:
        assert result.rc == rc, result.err
    assert "Traceback" not in result.err and "Traceback" not in result.out
    assert len(result.err_lines) == 1, result.err
    line = result.err_lines[0]
    assert line.startswith("error (") and "internal" not in line
    assert " — fix: " in line and line.split(" — fix: ", 1)[1].strip()
    for word in words:
        assert word in line, line


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config(cli, case):
    text, facts, words, rc = BAD_CONFIGS[case]
    write_config(cli, text)
    assert_one_line(cli("plan", "--facts", facts), words, rc)


@pytest.mark.parametrize("case", ["unknown-top-level-key", "yaml-syntax-error", "duplicate-hosts"])
def test_bad_config_stops_doctor_too(cli, case):
    text, facts, words, rc = BAD_CONFIGS[case]
    write_config(cli, text)
    assert_one_line(cli("doctor", "--facts", facts), words, rc)


def test_env_override_with_a_bogus_mode(cli):
    result = cli("plan", "--facts", DESKTOP, env={"AFFORDML_GPU__SHARING__MODE": "bogus"})
    assert_one_line(result, ["gpu.sharing", "bogus", "AFFORDML_"], 2)


def test_env_override_of_an_unknown_key(cli):
    result = cli("plan", "--facts", DESKTOP, env={"AFFORDML_VMS__WORKERS__COUNTT": "3"})
    assert_one_line(result, ["vms.workers.countt", "unknown key"], 2)


def mutate(name: str, change) -> dict:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    change(data)
    return data


def _set(path: list[str], value):
    def change(data):
        node = data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


def _delete(section: str, key: str):
    def change(data):
        del data[section][key]

    return change


# id -> (facts file content: text, or a fixture mutation, or None for a missing file; words in the error line)
BAD_FACTS = {
    "missing-file": (None, ["does not exist", "facts --save"]),
    "empty-file": ("", ["not JSON"]),
    "garbage": ("\x00\x01 this is not json", ["not JSON"]),
    "not-an-object": ("[1, 2, 3]", ["'format'"]),
    "wrong-format-field": (mutate("one-nic-pc", _set(["format"], "affordml-host-snapshot/0")), ["'format'"]),
    "no-format-field": (mutate("one-nic-pc", lambda d: d.pop("format")), ["'format'"]),
    "files-not-a-mapping": (mutate("one-nic-pc", _set(["files"], ["a"])), ["'files'"]),
    "file-value-not-text": (mutate("one-nic-pc", _set(["files", "/proc/cpuinfo"], 42)), ["/proc/cpuinfo"]),
    "dir-value-not-a-list": (
        mutate("one-nic-pc", _set(["dirs", "/sys/bus/pci/devices"], "0000:01:00.0")),
        ["/sys/bus/pci/devices"],
    ),
    "missing-meminfo": (mutate("one-nic-pc", _delete("files", "/proc/meminfo")), ["MemTotal"]),
    "meminfo-without-memtotal": (
        mutate("one-nic-pc", _set(["files", "/proc/meminfo"], "MemFree: 100 kB\n")),
        ["MemTotal"],
    ),
    "bad-ip-json": (mutate("one-nic-pc", _set(["commands", "ip -j addr"], "[{oops")), ["ip -j addr", "not JSON"]),
    "ip-json-wrong-shape": (
        mutate("one-nic-pc", _set(["commands", "ip -j addr"], '{"ifname": "eth0"}')),
        ["ip -j addr"],
    ),
    "bad-route-json": (
        mutate("one-nic-pc", _set(["commands", "ip -j route show default"], "[1, 2]")),
        ["ip -j route show default"],
    ),
    "bad-lsblk-json": (mutate("one-nic-pc", _set(["commands", "lsblk -J -b"], "{]")), ["lsblk"]),
    "bad-nvidia-smi-xml": (
        mutate("one-nic-pc", _set(["commands", "nvidia-smi -q -x"], "<nvidia_smi_log><gpu>")),
        ["nvidia-smi"],
    ),
    "malformed-pci-address": (
        mutate("one-nic-pc", lambda d: d["dirs"]["/sys/bus/pci/devices"].append("01:00.0")),
        ["PCI address", "01:00.0"],
    ),
    "no-df-output": (
        mutate("one-nic-pc", lambda d: [d["commands"].pop(k) for k in ("df -B1 -P /", "df -B1 -P /var/lib")]),
        ["free disk space"],
    ),
    "no-default-route": (
        mutate("one-nic-pc", _set(["commands", "ip -j route show default"], "[]")),
        ["network.management_interface", "default route"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FACTS))
def test_bad_facts_file(cli, tmp_path, case):
    content, words = BAD_FACTS[case]
    path = tmp_path / "facts.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    assert_one_line(cli("plan", "--facts", path), words)


def test_facts_path_is_a_directory(cli, tmp_path):
    assert_one_line(cli("plan", "--facts", tmp_path), ["not a regular file"], 3)


def test_bad_facts_stop_doctor_and_facts_too(cli, tmp_path):
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(BAD_FACTS["missing-meminfo"][0]))
    for command in ("doctor", "facts"):
        assert_one_line(cli(command, "--facts", path), ["MemTotal"], 3)


def test_enough_cases():
    assert len(BAD_CONFIGS) + len(BAD_FACTS) >= 20


def test_unknown_example_name(cli):
    result = cli("plan", "--example", "no-such-pc")
    if result.rc == 2 and "No such option" in result.err:
        pytest.skip("this version has no --example")
    assert_one_line(result, ["--example", "no-such-pc"], 3)


def test_ssh_host_that_is_not_in_the_config(cli):
    result = cli("facts", "--host", "nowhere")
    assert_one_line(result, ["--host", "nowhere"], 2)


def test_unreadable_config_file(cli):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    write_config(cli, "vms: {}\n")
    (cli.project / "affordml.yaml").chmod(0)
    assert_one_line(cli("plan", "--facts", DESKTOP), ["cannot be read"], 2)
