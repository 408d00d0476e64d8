"""Errors a user can cause. They print as one line and exit with status 2."""
from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: printed as one line, exit status 2."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (fix: {self.hint})"
        return self.message


class SpecError(UserError):
    """An invalid spec, located at file:line:column and field path."""

    def __init__(self, path: str, line: int, column: int, field: str, message: str):
        self.path, self.line, self.column, self.field = path, line, column, field
        where = f"{path}:{line}:{column}"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class BuildFailed(Exception):
    """Packer or a verification step failed; exit status 1."""

    exit_code = 1
