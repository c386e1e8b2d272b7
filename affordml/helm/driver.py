"""Install, skip, roll back and remove Helm releases: the helm binary from the artifact store, the kubeconfig from
secrets/ (a path on the command line; helm reads the file), values as files only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from affordml.errors import RunError
from affordml.helm import commands
from affordml.helm.decide import unchanged, undo_for
from affordml.helm.diagnose import PodView, explain, helm_error_line, not_ready
from affordml.helm.keep import ensure_plugin
from affordml.helm.release import Release, release_stamp

PROGRESS_EVERY_S = 15
QUICK_TIMEOUT_S = 60  # history, get values


@dataclass(frozen=True)
class Outcome:
    release: str
    action: str  # installed | upgraded | unchanged | removed | absent
    seconds: float = 0.0


class HelmDriver:
    """One cluster, one helm. `pods` reads a namespace's pods from the API (for progress and failure reasons)."""

    def __init__(
        self,
        helm: Path,
        kubeconfig: Path,
        home: Path,
        say: Callable[[str], None],
        pods: Callable[[str], list[PodView]] | None = None,
        warnings: Callable[[str], tuple[str, ...]] | None = None,
    ) -> None:
        self.helm, self.kubeconfig, self.home, self.say = Path(helm), Path(kubeconfig), Path(home), say
        self.pods = pods or (lambda _namespace: [])
        self.warnings = warnings or (lambda _namespace: ())

    # ------------------------------------------------------------------ helm as a child process
    def env(self) -> dict[str, str]:
        """Only what helm needs; its caches live in the project. No KUBECONFIG variable: --kubeconfig says it."""
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "LANG": "C.UTF-8",
        }

    def _run(self, argv: list[str], timeout: float = QUICK_TIMEOUT_S) -> subprocess.CompletedProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        try:
            return subprocess.run(
                argv, env=self.env(), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"Error: helm gave no answer within {timeout:.0f} s")

    def _run_watched(self, argv: list[str], release: Release) -> subprocess.CompletedProcess:
        """helm upgrade --wait, with a progress line every PROGRESS_EVERY_S from the API; killed (its whole process
        group) if it outlives its own timeout by a minute."""
        self.home.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with subprocess.Popen(
            argv,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as child:
            try:
                return self._watch(child, argv, release, started)
            except BaseException:  # Ctrl-C or an error here: helm must not outlive the run
                _kill_group(child)
                raise

    def _watch(self, child, argv, release: Release, started: float) -> subprocess.CompletedProcess:
        while True:
            try:
                out, err = child.communicate(timeout=PROGRESS_EVERY_S)
                return subprocess.CompletedProcess(argv, child.returncode, out, err)
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                if elapsed > release.timeout_s + 60:
                    _kill_group(child)
                    return subprocess.CompletedProcess(argv, 124, "", "Error: helm outlived its timeout")
                ready = self._readiness(release)
                self.say(f"{release.name}: waiting, {ready}, {elapsed:.0f} s of {release.timeout_s} s")

    def _readiness(self, release: Release) -> str:
        try:
            pods = self.pods(release.namespace)
        except Exception as exc:  # the API may blink during an install: progress only, never fatal
            return f"pods unknown ({type(exc).__name__})"
        return f"{len(pods) - len(not_ready(pods))}/{len(pods)} pods ready"

    # ------------------------------------------------------------------ queries
    def history(self, release: Release) -> list[dict]:
        done = self._run(commands.history(self.helm, self.kubeconfig, release))
        if done.returncode != 0:
            if "not found" in done.stderr:
                return []
            raise self._helm_failed(release, "history", done)
        return json.loads(done.stdout or "[]")

    def deployed_values(self, release: Release) -> dict | None:
        done = self._run(commands.get_values(self.helm, self.kubeconfig, release))
        if done.returncode != 0:
            return None
        return json.loads(done.stdout or "null")

    def deployed_manifest(self, release: Release) -> list[dict] | None:
        """The deployed release's objects as helm stored them (`helm get manifest`); None: no such release."""
        done = self._run(commands.get_manifest(self.helm, self.kubeconfig, release))
        if done.returncode != 0:
            if "not found" in done.stderr:
                return None
            raise self._helm_failed(release, "get manifest", done)
        documents = yaml.safe_load_all(done.stdout)
        return [d for d in documents if isinstance(d, dict) and isinstance(d.get("metadata"), dict)]

    # ------------------------------------------------------------------ actions
    def ensure(self, release: Release, chart: Path, values_files: list[Path], chart_digest_from: Path) -> Outcome:
        """`helm upgrade --install` unless the deployed release already has this chart and these values."""
        stamp = release_stamp(chart_digest_from, release.chart_subdir, values_files, release.keep_crds)
        before = self.history(release)
        if before and unchanged(before, self.deployed_values(release), stamp):
            self.say(f"{release.name}: unchanged (chart and values as deployed), skipped")
            return Outcome(release.name, "unchanged")
        verb = "upgrading" if before else "installing"
        self.say(f"{verb} {release.name} in namespace {release.namespace} (wait up to {release.timeout_s} s)")
        started = time.monotonic()
        argv = commands.upgrade_install(self.helm, self.kubeconfig, release, chart, values_files, stamp.description)
        if release.keep_crds:
            self.home.mkdir(parents=True, exist_ok=True)
            ensure_plugin(self.home)
        done = self._run_watched(argv, release)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            self._fail(release, before, done)
        self.say(f"{release.name}: ready in {seconds:.0f} s")
        return Outcome(release.name, "upgraded" if before else "installed", seconds)

    def _fail(self, release: Release, before: list[dict], done: subprocess.CompletedProcess) -> None:
        try:
            pods, warnings = self.pods(release.namespace), self.warnings(release.namespace)
        except Exception:  # noqa: BLE001 - the reason falls back to helm's own message
            pods, warnings = [], ()
        reason, fix = explain(pods, helm_error_line(done.stderr), release.fix_hint or _DEFAULT_FIX, warnings)
        undo = undo_for(before)
        undone = self._undo(release, undo)
        raise RunError(f"release {release.name} (namespace {release.namespace}) failed: {reason}; {undone}", fix)

    def _undo(self, release: Release, undo) -> str:
        if undo.action == "rollback":
            argv = commands.rollback(self.helm, self.kubeconfig, release, undo.revision)
        else:
            argv = commands.uninstall(self.helm, self.kubeconfig, release)
        done = self._run(argv, timeout=release.timeout_s + 30)
        if done.returncode != 0 and "not found" not in done.stderr:
            return f"undoing it failed too ({helm_error_line(done.stderr)})"
        return undo.said()

    def remove(self, release: Release) -> Outcome:
        if not self.history(release):
            return Outcome(release.name, "absent")
        started = time.monotonic()
        done = self._run(commands.uninstall(self.helm, self.kubeconfig, release), timeout=release.timeout_s + 30)
        if done.returncode != 0 and "not found" not in done.stderr:
            raise self._helm_failed(release, "uninstall", done)
        self.say(f"{release.name}: removed")
        return Outcome(release.name, "removed", time.monotonic() - started)

    def _helm_failed(self, release: Release, what: str, done: subprocess.CompletedProcess) -> RunError:
        return RunError(
            f"helm {what} {release.name} (namespace {release.namespace}) failed: {helm_error_line(done.stderr)}",
            "check that the cluster answers: `kubectl --kubeconfig secrets/kubeconfig get nodes`; then run again",
        )


def _kill_group(child: subprocess.Popen) -> None:
    if child.poll() is None:
        os.killpg(child.pid, signal.SIGKILL)
    child.communicate()


_DEFAULT_FIX = "look at the pods: `kubectl --kubeconfig secrets/kubeconfig get pods -A` and `kubectl describe pod`"


def install_in_order(
    driver: HelmDriver,
    planned: list[tuple[Release, Path, list[Path], Path]],
    before: dict[str, Callable[[], None]] | None = None,
) -> list[Outcome]:
    """Releases in the order given (the order is data); `before[name]` runs first (e.g. wait for what an earlier
    release's operator creates); stops at the first failure."""
    outcomes = []
    for release, chart, values, digest_from in planned:
        if before and release.name in before:
            before[release.name]()
        outcomes.append(driver.ensure(release, chart, values, digest_from))
    return outcomes


def remove_in_reverse(driver: HelmDriver, releases: list[Release]) -> list[Outcome]:
    return [driver.remove(release) for release in reversed(releases)]
