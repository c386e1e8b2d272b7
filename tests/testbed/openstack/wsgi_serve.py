"""Serves one OpenStack WSGI application with gunicorn; run by the services' venv python.

usage: wsgi_serve.py NAME HOST:PORT MODULE:ATTRIBUTE
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication


class SingleAppServer(BaseApplication):  # type: ignore[misc]
    """A gunicorn server for one application named by module and attribute."""

    def __init__(self, target: str, options: dict[str, Any]) -> None:
        """Remember what to load and how to serve it."""
        self.target = target
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Hand our options to gunicorn."""
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        """Import the application (inside the worker)."""
        module_name, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


def main() -> None:
    """Parse the three arguments, hide them from oslo.config and serve."""
    name, bind, target = sys.argv[1:4]
    sys.argv = [name]
    options = {
        "bind": bind,
        "workers": 1,
        "threads": 8,
        "timeout": 300,
        "graceful_timeout": 2,
        "proc_name": name,
        "accesslog": "-",
        "errorlog": "-",
    }
    SingleAppServer(target, options).run()


if __name__ == "__main__":
    main()
