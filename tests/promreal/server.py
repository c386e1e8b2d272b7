"""A real Prometheus for tests: Debian's `prometheus` package (binaries prometheus and promtool), extracted
without installing it (`apt-get download prometheus && dpkg-deb -x prometheus_*.deb DIR`; scripts/test does it),
listening on 127.0.0.1 only, with a throw-away data folder. AFFORDML_PROMETHEUS_DIR names DIR (or DIR/usr/bin)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ENV = "AFFORDML_PROMETHEUS_DIR"


def binaries() -> tuple[Path, Path] | str:
    """(prometheus, promtool), or why they are not there."""
    root = os.environ.get(ENV)
    if not root:
        return f"set {ENV} to Debian's prometheus package extracted with dpkg-deb -x (scripts/test does it)"
    for folder in (Path(root) / "usr" / "bin", Path(root)):
        server, tool = folder / "prometheus", folder / "promtool"
        if os.access(server, os.X_OK) and os.access(tool, os.X_OK):
            return server, tool
    return f"{ENV}={root}: no executable prometheus and promtool in it or in its usr/bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def backfill(promtool: Path, openmetrics_file: Path, data_dir: Path) -> float:
    started = time.monotonic()
    subprocess.run(
        [str(promtool), "tsdb", "create-blocks-from", "openmetrics", "-q", str(openmetrics_file), str(data_dir)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return time.monotonic() - started


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())


@contextmanager
def running(prometheus: Path, data_dir: Path, config: str, log: Path, netns: str | None = None, address: str = ""):
    """Prometheus with this config; yields its URL; stopped (and waited for) after. Here on a free loopback port,
    or inside the network namespace `netns` on `address` (port 9090; readiness is then the caller's to check)."""
    listen = f"{address}:9090" if netns else f"127.0.0.1:{free_port()}"
    config_file = data_dir.parent / "prometheus.yml"
    config_file.write_text(config)
    argv = [
        str(prometheus),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        "--storage.tsdb.retention.time=30d",
        f"--web.listen-address={listen}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["ip", "netns", "exec", netns, *argv] if netns else argv,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://{listen}"
    try:
        deadline = time.monotonic() + 60
        while not netns:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not become ready: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
