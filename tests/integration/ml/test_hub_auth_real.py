"""The rendered JupyterHub values drive the real authenticator (outside CI): JupyterHub 5.5.0 and
jupyterhub-nativeauthenticator 1.3.0, the versions in z2jh 4.4.0's images/hub/requirements.txt, from PyPI into a
virtualenv named by AFFORDML_JUPYTERHUB_PYTHON (its python). hub.config and hub.extraConfig are applied as z2jh's
jupyterhub_config.py applies them, on a real JupyterHub sqlite database."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parents[1] / "golden"
PYTHON_ENV = "AFFORDML_JUPYTERHUB_PYTHON"


def _python() -> str:
    if os.environ.get("CI"):
        pytest.skip("CI: JupyterHub itself is not a dependency of affordml")
    python = os.environ.get(PYTHON_ENV)
    if not python:
        pytest.skip(f"set {PYTHON_ENV} to a python with jupyterhub==5.5.0 and jupyterhub-nativeauthenticator==1.3.0")
    return python


def test_admin_exists_from_the_start_and_sign_ups_wait_for_approval(tmp_path):
    python = _python()
    values = GOLDEN / "desktop-rtx4090" / "ml" / "jupyterhub-values.yaml"
    db = f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    done = subprocess.run(
        [python, str(HERE / "hub_auth_check.py"), str(values), db], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["class"] == "nativeauthenticator.nativeauthenticator.NativeAuthenticator"
    assert found["admin_users"] == ["admin"] and found["allow_all"] is True and found["open_signup"] is False
    assert found["admin_login"] == "admin" and found["admin_wrong_password"] is None
    assert found["alice_signed_up"] and found["alice_before_approval"] is None
    assert found["alice_after_approval"] == "alice"
    assert found["short_password_refused"]
    # a restart keeps the admin's account as it is; nobody can sign up as admin
    assert found["restart_old_password"] == "admin" and found["restart_new_password"] is None
    assert found["admin_signup_again"] is False
