"""What `affordml status` says about the lock the platform runs and an upgrade under way."""

from __future__ import annotations


def lifecycle_lines(state_data: dict) -> dict[str, str]:
    lock = state_data.get("lock") if isinstance(state_data.get("lock"), dict) else {}
    out = {"lock": str(lock.get("name") or "not recorded (nothing installed yet)")}
    record = state_data.get("upgrade")
    hops = record.get("hops") if isinstance(record, dict) else None
    if isinstance(hops, list) and all(isinstance(h, dict) for h in hops) and isinstance(record.get("done", 0), int):
        done = record.get("done", 0)
        text = f"{record.get('from')} -> {record.get('to')}: {done}/{len(hops)} hop(s) done, {record.get('status')}"
        if record.get("status") != "done" and 0 <= done < len(hops):
            hop = hops[done]
            text += (
                f"; next: hop {done + 1} ({hop.get('phase')}) — run `affordml upgrade --yes-i-really-really-mean-it`"
            )
        if record.get("backup"):
            text += f"; backup {record['backup']}"
        out["upgrade"] = text
    return out
