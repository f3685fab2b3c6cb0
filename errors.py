"""Errors that name the place in the input that caused them."""

from __future__ import annotations


class KiraError(Exception):
    """Base class for errors kira reports to users (CLI prints them without a traceback)."""


class IngestError(KiraError):
    """A source file is malformed. Names file, line and field so a user can fix it.

    Ingestion is transactional: when this is raised nothing of the file has been stored.
    """

    def __init__(self, path: str, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field, self.message = str(path), line, field, message
        where = self.path
        if line is not None:
            where += f":{line}"
        if field:
            where += f" (field {field!r})"
        super().__init__(f"{where}: {message}")


class ModelNotFoundError(KiraError):
    """A model spec resolved to nothing loadable (no alias, no directory, not in the HF cache)."""


class IndexError_(KiraError):
    """An index version is missing, partial or failed its verification."""
