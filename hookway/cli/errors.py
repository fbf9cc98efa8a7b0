"""What can go wrong, each with the exit code docs/cli.md promises for it."""

from __future__ import annotations

from typing import Any

OK = 0
FAILED = 1  # Hookway answered, and the answer is a failure (docs/cli.md, "Exit codes")
USAGE = 2  # the same code click gives a bad flag
UNREACHABLE = 3
REFUSED = 4
NOT_FOUND = 5


class CliError(Exception):
    """A failure to report in one line (and as JSON with ``--json``), then exit with
    ``exit_code``. ``code`` is the API's error code when there is one."""

    exit_code = FAILED

    def __init__(
        self,
        message: str,
        *,
        code: str = "failed",
        hint: str = "",
        data: Any = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status  # the HTTP status Hookway answered, when it did
        self.code = code
        self.hint = hint
        self.data = data
        # Set when the command already showed the failure to people (a table, a line):
        # then only the exit code is left to give.
        self.shown = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "detail": self.message}
        if self.hint:
            out["hint"] = self.hint
        if self.data is not None:
            out["answer"] = self.data
        out["exit_code"] = self.exit_code
        return out


class UsageProblem(CliError):
    """Bad or missing flags, configuration or input files."""

    exit_code = USAGE

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message, code="usage", hint=hint)


class Unreachable(CliError):
    """No answer from Hookway: refused, DNS, TLS, timeout."""

    exit_code = UNREACHABLE


class Refused(CliError):
    """Credentials refused: the API key (401, 403) or a webhook's signature (ingest's 401)."""

    exit_code = REFUSED


class NotFound(CliError):
    exit_code = NOT_FOUND
