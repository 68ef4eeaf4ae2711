"""User-facing errors.

A ``UserError`` is bad input (a config key, a data file, a checkpoint path): the entry points
print its one-paragraph message and exit non-zero without a traceback. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input that the user can fix; the message names the file, line or config key."""

    exit_code: int = 2
    title: str = "bad input"  # what the message's heading says (never the class name)

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


class UnreadableImages(UserError):
    """Image files that cannot be read or decoded, all named in one message (``errors``: one per file),
    so that one run tells the user every file to replace, not one file per run."""

    title = "unreadable images"

    def __init__(self, errors: list[UserError]) -> None:
        listing = "\n".join(f"  {e}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} image file(s) cannot be read (empty, truncated, damaged or not an "
                         f"image); remove or replace them:\n{listing}{more}")
        self.errors = errors

    def with_more(self, errors: list[UserError]) -> "UnreadableImages":
        """This error, followed by those found in files read later (other splits)."""
        return UnreadableImages(self.errors + errors)


class LeakError(UserError):
    """A cross-split leak refused by the integrity gate (policy `fail`)."""

    exit_code = 3
    title = "leak refused"


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; raised at the offending step."""


class TooFewCandidates(Exception):
    """A cut asked for more samples than the candidates searched hard for it can give (most of them
    have copies outside): the gate then searches every sample hard and asks again."""
