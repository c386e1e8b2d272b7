"""`affordml report` as a user meets it (the real console script): bad input and an absent Prometheus are one line
each, with the exit code of their kind and no traceback."""

from __future__ import annotations

import socket

import pytest


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


@pytest.mark.parametrize(
    ("args", "rc", "words"),
    [
        (("--prometheus", "http://127.0.0.1:{port}"), 6, "is unreachable"),
        (("--prometheus", "127.0.0.1:9090"), 6, "is not an http(s) URL"),
        (("--since", "a week"), 2, "--since 'a week' is not a period"),
        (("--since", "400d"), 2, "outside 1m..90d"),
        ((), 6, "no cluster kubeconfig"),
    ],
)
def test_report_errors_are_one_line(cli, args, rc, words):
    port = _closed_port()
    result = cli("report", *(a.format(port=port) for a in args))
    assert result.rc == rc and len(result.err_lines) == 1, result.err
    assert words in result.err and "Traceback" not in result.err and "fix:" in result.err


def test_report_is_in_the_help(cli):
    assert "  report " in cli("--help").out
    assert "--since" in cli("report", "--help").out
