"""Reading JSON Lines input: the one reader every area uses, so every error names file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kira.errors import IngestError
from kira.textfile import decoded_lines


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSONL file.

    Raises ``IngestError`` naming the file and line for a missing file, undecodable bytes,
    invalid JSON or a line that is not a JSON object.
    """
    p = Path(path)
    if not p.is_file():
        raise IngestError(str(p), None, None, "file not found")
    for lineno, line in decoded_lines(p):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise IngestError(str(p), lineno, None, f"invalid JSON: {e.msg} (column {e.colno})") from e
        if not isinstance(obj, dict):
            raise IngestError(str(p), lineno, None, f"expected a JSON object, got {type(obj).__name__}")
        yield lineno, obj
