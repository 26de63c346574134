"""One error type for bad input, so every failure names the subject, the file and why."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input for one subject: raised with enough context to fix it without a debugger."""

    def __init__(self, subject: str | None, path: str | None, reason: str) -> None:
        self.subject = subject
        self.path = path
        self.reason = reason
        who = f"subject {subject!r}" if subject else "input"
        where = f", file {path!r}" if path else ""
        super().__init__(f"{who}{where}: {reason}")
