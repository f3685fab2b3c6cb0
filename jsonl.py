"""JSON Lines: the one reader every area uses (so every error names file and line) and the one writer."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
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


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write one JSON object per line (UTF-8, parent folders created); return the number written.

    Written to a sibling temporary file and renamed, so a reader never sees half a file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
            n += 1
    tmp.replace(p)
    return n
