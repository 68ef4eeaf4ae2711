"""User-facing errors.

A ``UserError`` is bad input (a config key, a data file, a checkpoint path): the entry points
print its one-paragraph message and exit non-zero without a traceback. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input that the user can fix; the message names the file, line or config key."""

    exit_code: int = 2

    def __init__(self, message: str, *, key: str | None = None, path: str | None = None) -> None:
        parts = []
        if key:
            parts.append(f"[config key `{key}`]")
        if path:
            parts.append(f"[{path}]")
        parts.append(message)
        super().__init__(" ".join(parts))
        self.key = key
        self.path = path


class LeakError(UserError):
    """A cross-split leak refused by the integrity gate (policy `fail`)."""

    exit_code = 3


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; raised at the offending step."""
