"""`affordml upgrade` and `affordml backup` through the real console script: the hop plan of a platform whose
state was written by the previous lock, the confirmation before any change, init refusing a lock change,
and a backup of config, state and secrets written 0600 with a manifest and listed."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import yaml

from affordml.lifecycle.rules import lock_summary
from tests.cli.test_cli import assert_one_line_error, fixture

PREVIOUS = Path(__file__).resolve().parents[1] / "fixtures" / "locks" / "2026.05.yaml"


def installed_project(root: Path, phases=("preflight", "host", "openstack")) -> Path:
    """A project as the previous affordml left it: its lock in the state, some phases done, a secret."""
    root.mkdir(mode=0o700, parents=True)
    (root / "affordml.yaml").write_text("hosts:\n  - name: pc1\n    address: local\n")
    state = {
        "version": 1,
        "plan_hash": "",
        "phases": {name: {"status": "done"} for name in phases},
        "data": {"lock": lock_summary(yaml.safe_load(PREVIOUS.read_text()))},
    }
    (root / "state.json").write_text(json.dumps(state))
    (root / "secrets").mkdir(mode=0o700)
    (root / "secrets" / "platform.yml").write_text("affordml_jupyterhub_cookie_secret: abc\n")
    (root / "secrets" / "platform.yml").chmod(0o600)
    return root


def test_upgrade_plan_of_a_platform_installed_with_the_previous_lock(cli):
    installed_project(cli.project)
    before = (cli.project / "state.json").read_text()
    result = cli("upgrade", "--plan")
    assert result.rc == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("upgrade from lock 2026.05 to 2026.11: 4 hop(s)")
    assert "1. [openstack] kolla-ansible 22.2.0: kolla-mergepwd, prechecks, pull, upgrade, post-deploy" in lines[1]
    assert "2. [kubernetes] Kubespray v2.31.0 upgrade-cluster.yml, Kubernetes 1.34.3 -> 1.35.4" in lines[2]
    assert any("helm upgrade gpu_operator v26.3.3 -> v26.7.0" in line for line in lines)
    data = json.loads(cli("upgrade", "--json").out)
    assert [h["phase"] for h in data["hops"]] == ["openstack", "kubernetes", "gpu", "ml"]
    assert (cli.project / "state.json").read_text() == before  # --plan changes nothing
    assert not (cli.project / "env").exists()


def test_upgrade_asks_for_confirmation_before_any_change(cli):
    installed_project(cli.project)
    result = cli("upgrade")
    assert result.rc == 8
    assert_one_line_error(result, "2026.05 to 2026.11", "--yes-i-really-really-mean-it")
    assert not (cli.project / "backups").exists() and not (cli.project / "env").exists()


def test_upgrade_without_an_installed_lock_says_what_to_do(cli):
    cli.project.mkdir(mode=0o700)
    result = cli("upgrade", "--plan")
    assert result.rc == 7
    assert_one_line_error(result, "records no version lock", "affordml init")


def test_init_refuses_to_deploy_another_lock_over_the_platform(cli):
    installed_project(cli.project)
    result = cli("init", "--facts", fixture("desktop-rtx4090"), "--dry-run")
    assert result.rc == 7
    assert_one_line_error(result, "runs version lock 2026.05", "affordml upgrade --plan")


def test_backup_writes_config_state_secrets_0600_with_a_manifest_and_lists_it(cli):
    installed_project(cli.project, phases=("preflight",))
    result = cli("backup", "--facts", fixture("desktop-rtx4090"))
    assert result.rc == 0, result.err
    (folder,) = (cli.project / "backups").iterdir()
    manifest = json.loads((folder / "manifest.json").read_text())
    paths = {item["path"] for item in manifest["items"]}
    assert {f"backups/{folder.name}/project/{n}" for n in ("affordml.yaml", "state.json")} <= paths
    assert f"backups/{folder.name}/project/secrets/platform.yml" in paths
    assert manifest["lock"]["name"] == "2026.05"
    assert set(manifest["skipped"]) == {"openstack", "kubernetes"}  # their phases never ran: said, not hidden
    for path in [folder / "manifest.json", *(cli.project / p for p in paths)]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    secret = cli.project / f"backups/{folder.name}/project/secrets/platform.yml"
    assert secret.read_text() == (cli.project / "secrets" / "platform.yml").read_text()
    listed = cli("backup", "--list")
    assert listed.rc == 0 and folder.name in listed.out and "lock 2026.05" in listed.out
    assert "openstack: the openstack phase has not run" in " ".join(listed.out.split())


def test_restore_checks_the_backup_keeps_the_current_files_and_puts_them_back(cli):
    installed_project(cli.project, phases=("preflight",))
    assert cli("backup", "--facts", fixture("desktop-rtx4090")).rc == 0
    (taken,) = (cli.project / "backups").iterdir()
    secret = cli.project / "secrets" / "platform.yml"
    original = secret.read_text()
    secret.write_text("affordml_jupyterhub_cookie_secret: changed\n")

    asked = cli("restore", taken.name)
    assert asked.rc == 8
    assert_one_line_error(asked, "--yes-i-really-really-mean-it")
    assert "changed" in secret.read_text()

    unknown = cli("restore", "nope", "--yes-i-really-really-mean-it")
    assert unknown.rc == 7
    assert_one_line_error(unknown, "no complete backup named 'nope'", taken.name)

    done = cli("restore", taken.name, "--yes-i-really-really-mean-it")
    assert done.rc == 0, done.err
    assert secret.read_text() == original and stat.S_IMODE(secret.stat().st_mode) == 0o600
    kept = [p for p in (cli.project / "backups").iterdir() if p.name.endswith("-pre-restore")]
    assert len(kept) == 1
    assert "changed" in (kept[0] / "project" / "secrets" / "platform.yml").read_text()  # nothing the user had is lost

    stored = taken / "project" / "secrets" / "platform.yml"
    stored.write_text("tampered: true\n")
    tampered = cli("restore", taken.name, "--yes-i-really-really-mean-it")
    assert tampered.rc == 7
    assert_one_line_error(tampered, "does not match its sha256", "nothing restored")
    assert secret.read_text() == original
