"""Typed errors of the core. The edges (CLI, Discord) turn them into friendly messages."""

from __future__ import annotations

from pathlib import Path


class HingeError(Exception):
    """Base of every error the core raises on purpose.

    `user_message` is what an edge may show a user: never the exception's own text, which can hold paths.
    """

    user_message = "Sorry, I couldn't do that right now; please try again later."


class KnowledgeFileError(HingeError):
    """A knowledge file that cannot be used: names the file, the field and the reason."""

    def __init__(self, path: Path | str, field: str, reason: str) -> None:
        self.path = str(path)
        self.field = field
        self.reason = reason
        super().__init__(f"{self.path}: {field}: {reason}")


class LibraryError(HingeError):
    """A library build found bad files; carries every one of them."""

    def __init__(self, errors: list[KnowledgeFileError]) -> None:
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"{len(errors)} bad knowledge file(s):\n{lines}")


class IndexLoadError(HingeError):
    """The index folder is missing, damaged or built with another model."""

    user_message = "The library index isn't available right now; the admins can see why in the log."

    def __init__(self, reason: str, hint: str = "rebuild it with `hinge index build`") -> None:
        self.reason = reason
        self.hint = hint
        super().__init__(f"{reason} ({hint})")


class BuildInProgressError(HingeError):
    """A second build was asked for while one runs."""

    user_message = "A reindex is already running; try again when it has finished."


class ModelLoadError(HingeError):
    """The embedding model could not be loaded from disk."""
