"""ansible-runner events -> a progress model (phase, current task, per-host ok/changed/failed/unreachable)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class HostCounts:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


@dataclass
class Progress:
    phase: str
    task: str = ""
    hosts: dict[str, HostCounts] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # host, task, message
    started: float = field(default_factory=time.monotonic)
    events: int = 0
    no_hosts_matched: bool = False
    reboot_required: set[str] = field(default_factory=set)  # hosts whose role set affordml_reboot_required

    def host(self, name: str) -> HostCounts:
        return self.hosts.setdefault(name, HostCounts())

    def on_event(self, event: dict) -> bool:
        """ansible-runner's event_handler: update the model; True keeps the event on disk."""
        self.events += 1
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host") or ""
        if kind == "playbook_on_task_start":
            self.task = data.get("task") or data.get("name") or ""
        elif kind == "runner_on_ok":
            res = data.get("res") or {}
            counts = self.host(host)
            counts.ok += 1
            counts.changed += int(bool(res.get("changed")))
            if (res.get("ansible_facts") or {}).get("affordml_reboot_required"):
                self.reboot_required.add(host)
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.host(host).failed += 1
            self.failures.append((host, data.get("task", self.task), _message(data.get("res") or {})))
        elif kind == "runner_on_unreachable":
            self.host(host).unreachable += 1
            self.failures.append((host, data.get("task", self.task), _message(data.get("res") or {})))
        elif kind == "playbook_on_stats":
            self._take_recap(data)
        elif kind == "playbook_on_no_hosts_matched":
            self.no_hosts_matched = True
        elif kind == "runner_on_skipped":
            self.host(host).skipped += 1
        return True

    def _take_recap(self, data: dict) -> None:
        """Ansible's own recap is authoritative: it counts handlers and loops as ansible-playbook prints them."""
        fields = {"ok": "ok", "changed": "changed", "failures": "failed", "dark": "unreachable", "skipped": "skipped"}
        hosts = set().union(*(set((data.get(key) or {}).keys()) for key in fields))
        for host in hosts:
            counts = self.host(host)
            for key, attr in fields.items():
                setattr(counts, attr, int((data.get(key) or {}).get(host, 0)))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def totals(self) -> HostCounts:
        total = HostCounts()
        for counts in self.hosts.values():
            for key in vars(total):
                setattr(total, key, getattr(total, key) + getattr(counts, key))
        return total

    def summary(self) -> str:
        t = self.totals()
        return (
            f"{len(self.hosts)} host(s): ok={t.ok} changed={t.changed} failed={t.failed} "
            f"unreachable={t.unreachable} skipped={t.skipped} in {self.elapsed:.1f}s"
        )


def _message(res: dict) -> str:
    text = res.get("msg") or res.get("stderr") or res.get("reason") or ""
    if not text and res.get("censored"):
        text = "(output hidden: no_log)"
    return " ".join(str(text).split())[:300]
