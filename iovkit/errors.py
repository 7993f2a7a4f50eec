"""The iovkit exception tree and the process exit codes.

Every failure a user can cause or meet is an IovkitError that carries a one-line message naming the
file, field, value or host involved. The CLI prints that line and exits with the error's code; a
traceback appears only with --debug.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes shared by every command."""

    OK = 0
    FINDINGS = 1  # check: partial/not-ready; diagnose: bottleneck; compare: worse
    USAGE = 2  # bad input: a file, field, value or argument is wrong
    UNREACHABLE = 3  # a host, executor or target could not be reached
    FAILED = 4  # an apply step failed (and was rolled back)
    INTERNAL = 70  # a bug in iovkit (sysexits EX_SOFTWARE); --debug shows the traceback
    INTERRUPTED = 130


class IovkitError(Exception):
    """Base of all iovkit errors; str(err) is the one-line message shown to the user."""

    exit_code: ExitCode = ExitCode.USAGE


class InputError(IovkitError):
    """A file, field or value given to iovkit is malformed or of the wrong kind."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None) -> None:
        self.path = path
        self.field = field
        parts = [p for p in (path, field) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class UnreachableError(IovkitError):
    """A remote host, an executor or a UDP target did not answer."""

    exit_code = ExitCode.UNREACHABLE


class ApplyError(IovkitError):
    """A switch-over step failed; what was done has been rolled back."""

    exit_code = ExitCode.FAILED
