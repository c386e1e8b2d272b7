"""Errors a user can act on. Each carries one line: what is wrong, and the fix. The CLI prints it, no traceback."""

from __future__ import annotations


class AffordmlError(Exception):
    """Base class: a problem the user can fix."""

    exit_code = 1
    label = "error"

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def one_line(self) -> str:
        text = " ".join(self.problem.split())
        return f"{text} — fix: {' '.join(self.fix.split())}" if self.fix else text


class ConfigError(AffordmlError):
    exit_code = 2
    label = "config"


class FactsError(AffordmlError):
    exit_code = 3
    label = "facts"


class PlanError(AffordmlError):
    """The host cannot carry the requested platform."""

    exit_code = 4
    label = "plan"


class PhaseUnavailable(AffordmlError):
    """A command or phase that this version cannot run yet."""

    exit_code = 5
    label = "not available"


class RunError(AffordmlError):
    exit_code = 6
    label = "run"


class StateError(AffordmlError):
    exit_code = 7
    label = "state"


class ConfirmationRequired(AffordmlError):
    exit_code = 8
    label = "confirm"


class ArtifactError(AffordmlError):
    """A download, a mirror or a checksum failed; the message names the artifact, where it came from and the fix."""

    exit_code = 9
    label = "artifact"


class UnsafeFile(AffordmlError):
    """A file or folder in the project that affordml will not read or write as it is (a link, someone else's)."""

    exit_code = 11
    label = "files"


class MissingFile(UnsafeFile):
    """A folder on the way to a file does not exist."""


class Interrupted(AffordmlError):
    """A signal (Ctrl-C, SIGTERM, SIGHUP) stopped the run; what it started was stopped first."""

    label = "interrupted"

    def __init__(self, signum: int, problem: str, fix: str | None = None) -> None:
        super().__init__(problem, fix)
        self.signum = signum
        self.exit_code = 128 + signum


class RebootRequired(AffordmlError):
    """A host must reboot before the next phase may run (its kernel arguments are not active yet)."""

    exit_code = 10
    label = "reboot"
