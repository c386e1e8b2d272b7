"""The report's time window: `--since 7d` and the query step that keeps each series small."""

from __future__ import annotations

import re

from affordml.errors import ConfigError

UNITS_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_PERIOD_S = 90 * 86400
POINTS_PER_SERIES = 2000  # Prometheus refuses more than 11,000 points per series; fewer keep the answer small
MIN_STEP_S = 60


def parse_since(text: str) -> int:
    """'7d', '24h', '90m', '2w' -> seconds."""
    match = re.fullmatch(r"\s*(\d{1,4})\s*([mhdw])\s*", text or "")
    if not match:
        raise ConfigError(f"--since {text!r} is not a period", "write a number and a unit: 90m, 24h, 7d or 2w")
    seconds = int(match.group(1)) * UNITS_S[match.group(2)]
    if not MIN_STEP_S <= seconds <= MAX_PERIOD_S:
        raise ConfigError(f"--since {text!r} is outside 1m..90d", "choose a period between 1m and 90d")
    return seconds


def step_for(period_s: int) -> int:
    """Whole minutes, at least one, so that the period has at most POINTS_PER_SERIES points."""
    step = max(MIN_STEP_S, -(-period_s // POINTS_PER_SERIES))
    return -(-step // 60) * 60
