"""Errors a user can act on. Each carries one line: what is wrong, and the fix. The CLI prints it, no traceback.
Each kind has its exit code and label, given where it is declared: `class X(AffordmlError, exit_code=2, label=...)`."""

from __future__ import annotations


class AffordmlError(Exception):
    """Base class: a problem the user can fix."""

    exit_code = 1
    label = "error"

    def __init_subclass__(cls, exit_code: int | None = None, label: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code
        if label is not None:
            cls.label = label

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def one_line(self) -> str:
        text = " ".join(self.problem.split())
        return f"{text} — fix: {' '.join(self.fix.split())}" if self.fix else text


class ConfigError(AffordmlError, exit_code=2, label="config"):
    """affordml.yaml, an option or a name given on the command line is wrong."""


class FactsError(AffordmlError, exit_code=3, label="facts"):
    """A host's facts could not be read, or a facts file is not what affordml wrote."""


class PlanError(AffordmlError, exit_code=4, label="plan"):
    """The host cannot carry the requested platform."""


class PhaseUnavailable(AffordmlError, exit_code=5, label="not available"):
    """A command or phase that this version cannot run yet."""


class RunError(AffordmlError, exit_code=6, label="run"):
    """A phase, a playbook or a check failed while it ran."""


class StateError(AffordmlError, exit_code=7, label="state"):
    """The project's state (state.json, its records) does not allow this step."""


class ConfirmationRequired(AffordmlError, exit_code=8, label="confirm"):
    """A destructive step was asked without its confirmation flag."""


class ArtifactError(AffordmlError, exit_code=9, label="artifact"):
    """A download, a mirror or a checksum failed; the message names the artifact, where it came from and the fix."""


class RebootRequired(AffordmlError, exit_code=10, label="reboot"):
    """A host must reboot before the next phase may run (its kernel arguments are not active yet)."""


class UnsafeFile(AffordmlError, exit_code=11, label="files"):
    """A file or folder in the project that affordml will not read or write as it is (a link, someone else's)."""


class MissingFile(UnsafeFile):
    """A folder on the way to a file does not exist."""


class Interrupted(AffordmlError, label="interrupted"):
    """A signal (Ctrl-C, SIGTERM, SIGHUP) stopped the run; what it started was stopped first."""

    def __init__(self, signum: int, problem: str, fix: str | None = None) -> None:
        super().__init__(problem, fix)
        self.signum = signum
        self.exit_code = 128 + signum
