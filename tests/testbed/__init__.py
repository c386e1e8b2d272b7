"""Real test hosts for integration tests: systemd-nspawn containers on a private bridge (see nspawn.py)."""
