"""Run the checks in order: each one timed, skipped by name, or not applicable to the plan; the checks' namespace
made first and deleted after (its pods, job and LocalQueue with it)."""

from __future__ import annotations

import time

from affordml.errors import ConfigError
from affordml.verify import objects as obj
from affordml.verify.api import CheckFailed
from affordml.verify.checks import Check, VerifyContext, all_check_names, planned_checks
from affordml.verify.record import FAILED, NOT_APPLICABLE, PASSED, SKIPPED, CheckResult
from affordml.verify.transport import ApiUnreachable

NEEDS_NAMESPACE = ("gpu-pod-", "two-pods-one-gpu", "kueue-job")
API_FIX = "check `kubectl --kubeconfig secrets/kubeconfig get nodes`; run `affordml init phase kubernetes` if it fails"


def check_skips(skip: set[str], plan=None) -> None:
    known = set(all_check_names(plan)) | set(all_check_names(None))
    unknown = sorted(skip - known)
    if unknown:
        raise ConfigError(
            f"--skip-check {unknown[0]!r}: no such check", f"use one of: {', '.join(all_check_names(plan))}"
        )


def run_checks(vc: VerifyContext, skip: set[str] = frozenset(), clock=time.monotonic) -> list[CheckResult]:
    check_skips(set(skip), vc.plan)
    checks = planned_checks(vc.plan)
    results, namespace_made = [], False
    try:
        for check in checks:
            reason = "skipped as asked (--skip-check)" if check.name in skip else None
            if reason is None and check.applies(vc.plan):
                results.append(CheckResult(check.name, NOT_APPLICABLE, check.proves, check.applies(vc.plan)))
                continue
            if reason:
                results.append(CheckResult(check.name, SKIPPED, check.proves, reason))
                continue
            if check.name.startswith(NEEDS_NAMESPACE) and not namespace_made:
                namespace_made = _make_namespace(vc)
            results.append(_run_one(vc, check, clock))
            vc.say(f"[verify] {results[-1].line()}")
    finally:
        if namespace_made:
            _delete_namespace(vc)
    return results


def _run_one(vc: VerifyContext, check: Check, clock) -> CheckResult:
    started = clock()
    try:
        detail = check.run(vc)
        return CheckResult(check.name, PASSED, check.proves, detail, seconds=round(clock() - started, 1))
    except CheckFailed as exc:
        status, detail, fix = FAILED, exc.detail, exc.fix or check.fix
    except ApiUnreachable as exc:
        status, detail, fix = FAILED, f"the Kubernetes API did not answer: {exc}", API_FIX
    return CheckResult(check.name, status, check.proves, detail, fix, round(clock() - started, 1))


def _make_namespace(vc: VerifyContext) -> bool:
    """Create it; one left Terminating by the previous run is waited for first (bounded)."""
    path = f"/api/v1/namespaces/{obj.NAMESPACE}"
    try:
        started = vc.waits.clock()
        while ((vc.api.get(path) or {}).get("metadata") or {}).get("deletionTimestamp"):
            if vc.waits.clock() - started >= vc.waits.gone_s:
                return False
            vc.waits.sleep(vc.waits.poll_s)
        vc.api.create("/api/v1/namespaces", obj.namespace())
        started = vc.waits.clock()  # pods are refused until the controller made the namespace's default account
        while vc.api.get(f"{path}/serviceaccounts/default") is None and vc.waits.clock() - started < vc.waits.gone_s:
            vc.waits.sleep(vc.waits.poll_s)
    except (CheckFailed, ApiUnreachable):
        return False  # each check that needs it then fails with its own reason
    return True


def _delete_namespace(vc: VerifyContext) -> None:
    try:
        vc.api.delete(f"/api/v1/namespaces/{obj.NAMESPACE}")
    except (CheckFailed, ApiUnreachable) as exc:
        vc.say(f"[verify] could not delete namespace {obj.NAMESPACE}: {exc}; delete it with kubectl")
