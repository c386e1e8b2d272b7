"""Run by test_hub_auth_real.py under a Python that has JupyterHub and NativeAuthenticator at the k8s-hub image's
versions. Reads the rendered values (argv[1]) and a database URL (argv[2]), applies hub.config and hub.extraConfig
as z2jh's jupyterhub_config.py does, and drives the real authenticator on a real JupyterHub database. Prints one
JSON line of findings."""

import asyncio
import json
import sys
import types

import yaml
from jupyterhub import orm
from traitlets.config import Config


def load(values_path: str, password: str):
    with open(values_path) as file:
        values = yaml.safe_load(file)
    values.setdefault("custom", {}).setdefault("affordml", {})["adminPassword"] = password

    def get_config(key, default=None):  # z2jh.get_config: dotted lookup in the chart values
        node = values
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    sys.modules["z2jh"] = types.SimpleNamespace(get_config=get_config)
    c = Config()
    for cls, traits in values["hub"]["config"].items():
        for trait, value in traits.items():
            c[cls][trait] = value
    for snippet in values["hub"]["extraConfig"].values():
        exec(snippet, {"c": c})
    return c


def main() -> None:
    values_path, db_url = sys.argv[1], sys.argv[2]
    found = {}
    c = load(values_path, "first-password-123")
    cls = c.JupyterHub.authenticator_class
    db = orm.new_session_factory(db_url)()
    auth = cls(config=c, _deprecated_db_session=db)

    def login(a, user, password):  # the hub's own path: authenticate, then the allow/block checks
        got = asyncio.run(a.get_authenticated_user(None, {"username": user, "password": password}))
        return got and got["name"]

    found["class"] = f"{cls.__mro__[1].__module__}.{cls.__mro__[1].__name__}"
    found["admin_users"] = sorted(auth.admin_users)
    found["allow_all"] = auth.allow_all
    found["open_signup"] = auth.open_signup
    found["admin_login"] = login(auth, "admin", "first-password-123")
    found["admin_wrong_password"] = login(auth, "admin", "wrong-password-1")
    # a user signs up (the sign-up form calls create_user): not let in until an admin approves
    info = auth.create_user("alice", "alice-password-9")
    found["alice_signed_up"] = info is not None
    found["alice_before_approval"] = login(auth, "alice", "alice-password-9")
    found["short_password_refused"] = auth.create_user("bob", "short") is None
    from nativeauthenticator.orm import UserInfo

    UserInfo.change_authorization(db, "alice")  # what /hub/authorize/alice does
    found["alice_after_approval"] = login(auth, "alice", "alice-password-9")
    # the hub restarts with another password in the values: the admin's existing account is kept as it is
    c2 = load(values_path, "second-password-456")
    auth2 = c2.JupyterHub.authenticator_class(config=c2, _deprecated_db_session=db)
    found["restart_old_password"] = login(auth2, "admin", "first-password-123")
    found["restart_new_password"] = login(auth2, "admin", "second-password-456")
    # someone signs up as admin: refused, the account exists
    found["admin_signup_again"] = auth2.create_user("admin", "attacker-password-1") is not None
    print(json.dumps(found))


main()
