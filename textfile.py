"""Reading text input files the same way in every loader: strict UTF-8, one BOM rule, strict CSV.

WHY: each loader used to decode and split on its own, so a UTF-8 byte-order mark was accepted by
the KB and table loaders but rejected by the JSONL reader (and turned a CSV header into
``\\ufeffid``), and an unterminated quote silently merged every later CSV row into one field.
Every error names the file and line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

from kira.errors import IngestError

BOM = "\ufeff"


def decode_line(raw: bytes, path: str | Path, lineno: int) -> str:
    """One line as text: strict UTF-8, a leading BOM on line 1 dropped."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise IngestError(str(path), lineno, None,
                          f"not valid UTF-8: {e.reason} at byte {e.start} ({raw[e.start:e.start + 4]!r})") from e
    return text[1:] if lineno == 1 and text.startswith(BOM) else text


def decoded_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for every line of a UTF-8 file (line endings kept, BOM dropped)."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            yield lineno, decode_line(raw, path, lineno)


def decode_text(data: bytes, path: str | Path) -> str:
    """A whole file's bytes as text, under the same rules as :func:`decode_line`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise IngestError(str(path), line, None, f"not valid UTF-8: {e.reason} at byte {e.start}") from e
    return text[1:] if text.startswith(BOM) else text


def csv_records(lines: Iterable[str], path: str | Path, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """``(line the record starts on, values)`` for each non-blank CSV record, with strict quoting.

    A quoted field may span lines (that is valid CSV), but a quote left open at the end of the
    file, or text after a closing quote, is an error naming the line where that record began,
    instead of one giant field holding the rest of the file.
    """
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            what = ("unterminated quoted field (a '\"' is never closed)" if "end of data" in str(e)
                    else f"malformed CSV ({e})")
            raise IngestError(str(path), start, None, what) from e
        line, start = start, reader.line_num + 1
        if values and not all(not v.strip() for v in values):
            yield line, values
