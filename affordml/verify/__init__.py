"""The verify phase: named checks of the running platform (checks.py), run with bounded waits in a namespace of
their own (runner.py), their results kept in the state and shown by `affordml status` (record.py)."""
