"""Text sources → DPR-style passages in the store.

``ingest_source(store, "KIND:PATH")`` reads rows from JSONL / CSV / Parquet files, a directory of
.txt/.md/.html files, or WordNet's data files, cuts each document into ~``words``-word windows
(title kept on every window) and stores them as the source's passages, replacing what the source
held before. Ids are ``<source>:<doc id or position>:<window>``, so re-ingesting the same input gives
the same ids. Everything happens in one store transaction: a bad row raises ``IngestError`` naming
file, line and field, and nothing of the source is written.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from kira.errors import IngestError, KiraError
from kira.jsonl import iter_jsonl
from kira.kb.store import claim_source_name
from kira.schema import Passage
from kira.textfile import csv_records, decoded_lines

KINDS = ("jsonl", "csv", "parquet", "dir", "wordnet")
DIR_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
KIND_PREFIX = "text:"  # sources table kind, so a KB of the same name is never clobbered
TEXT_FIELDS = ("text", "contents")
INSERT_BATCH = 5000
MAX_CHARS = 100_000  # default of ``ingest.max_chars``
MAX_ID_CHARS = 512  # ids are one untokenized Lucene term (at most 32,766 bytes); keep them short


@dataclass
class Document:
    """One input document before windowing; ``path``/``line`` locate it for error messages."""

    doc_id: str
    title: str
    text: str
    path: str
    line: int | None
    position: int
    metadata: dict[str, Any] = field(default_factory=dict)


def parse_spec(spec: str) -> tuple[str, Path]:
    kind, sep, path = spec.partition(":")
    if not sep or kind not in KINDS:
        raise KiraError(f"source {spec!r}: expected KIND:PATH with KIND one of {', '.join(KINDS)}")
    if kind == "wordnet" and not path:
        path = "/usr/share/wordnet"
    p = Path(path).expanduser()
    if not p.exists():
        raise IngestError(str(p), None, None, "no such file or directory")
    if kind == "dir" and not p.is_dir():
        raise IngestError(str(p), None, None, "dir: source must be a directory")
    return kind, p


def default_name(kind: str, path: Path) -> str:
    if kind == "wordnet":
        return "wordnet-synsets"
    stem = path.name if path.is_dir() else path.name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or kind


# ---- checksums ----------------------------------------------------------------------------------
def _files_of(kind: str, path: Path) -> list[Path]:
    if kind == "dir":
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DIR_SUFFIXES)
    if kind == "wordnet":
        return [path / f for f in ("data.noun", "data.verb", "data.adj", "data.adv") if (path / f).exists()]
    return [path]


def files_checksum(root: Path, files: list[Path]) -> str:
    """sha256 over (relative name, bytes) of every input file: changes iff the input changed."""
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(root) if f != root and root.is_dir() else f.name).encode())
        h.update(b"\x00")
        with f.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


# ---- row readers ----------------------------------------------------------------------------------
def _row_document(row: dict[str, Any], path: Path, line: int | None, position: int) -> Document:
    text_key = next((k for k in TEXT_FIELDS if k in row), None)
    if text_key is None:
        raise IngestError(str(path), line, "text", "row has no 'text' (or 'contents') field")
    text = row[text_key]
    if not isinstance(text, str) or not text.strip():
        raise IngestError(str(path), line, text_key, f"must be a non-empty string, got {text!r:.60}")
    title = row.get("title", "")
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise IngestError(str(path), line, "title", f"must be a string, got {type(title).__name__}")
    raw_id = row.get("id")
    if raw_id is None or raw_id == "":
        doc_id = str(position)
    elif isinstance(raw_id, str | int) and not isinstance(raw_id, bool):
        doc_id = str(raw_id).strip()
        if not doc_id:
            raise IngestError(str(path), line, "id", "empty id")
    else:
        raise IngestError(str(path), line, "id", f"must be a string or integer, got {type(raw_id).__name__}")
    meta = {k: v for k, v in row.items() if k not in ("id", "title", *TEXT_FIELDS)}
    try:
        meta = json.loads(json.dumps(meta, default=str))
    except (TypeError, ValueError) as e:
        raise IngestError(str(path), line, "metadata", f"not JSON-serialisable: {e}") from e
    return Document(doc_id, title.strip(), text, str(path), line, position, meta)


def read_jsonl(path: Path) -> Iterator[Document]:
    for pos, (lineno, row) in enumerate(iter_jsonl(path)):
        yield _row_document(row, path, lineno, pos)


def read_csv(path: Path) -> Iterator[Document]:
    records = csv_records((t for _, t in decoded_lines(path)), path)
    try:
        _, header = next(records)
    except StopIteration:
        raise IngestError(str(path), 1, None, "empty CSV file (no header)") from None
    header = [h.strip() for h in header]
    if not any(k in header for k in TEXT_FIELDS):
        raise IngestError(str(path), 1, "text", f"CSV header has no 'text' or 'contents' column: {header}")
    for pos, (line, values) in enumerate(records):
        if len(values) != len(header):
            raise IngestError(str(path), line, None, f"{len(values)} values for {len(header)} columns")
        row = dict(zip(header, values, strict=True))
        yield _row_document(row, path, line, pos)


def read_parquet(path: Path) -> Iterator[Document]:
    """Rows of a Parquet file in batches; ``line`` is the 1-based row number."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for non-parquet input
        raise IngestError(str(path), None, None, f"not a Parquet file: {e}") from e
    names = pf.schema_arrow.names
    if not any(k in names for k in TEXT_FIELDS):
        raise IngestError(str(path), None, "text", f"Parquet file has no 'text' or 'contents' column: {names}")
    pos = 0
    for batch in pf.iter_batches(batch_size=INSERT_BATCH):
        for row in batch.to_pylist():
            yield _row_document(row, path, pos + 1, pos)
            pos += 1


class _TextExtractor(HTMLParser):
    """Visible text and <title> of an HTML page (scripts/styles dropped)."""

    BLOCK = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("script", "style", "noscript"):
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "noscript") and self._skip:
            self._skip -= 1
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def strip_html(markup: str) -> tuple[str, str]:
    """``(title, text)`` of an HTML document."""
    p = _TextExtractor()
    p.feed(markup)
    p.close()
    text = html.unescape("".join(p.parts))
    return " ".join(p.title.split()), re.sub(r"[ \t\r\f\v]+", " ", text).strip()


def read_dir(path: Path) -> Iterator[Document]:
    """One document per .txt/.md/.html file; id = relative path, title = <title>/# heading/file stem."""
    for pos, f in enumerate(_files_of("dir", path)):
        raw = f.read_bytes()
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw[:e.start].count(b"\n") + 1
            raise IngestError(str(f), line, None, f"not valid UTF-8: {e.reason} at byte {e.start}") from e
        rel = f.relative_to(path).as_posix()
        title = ""
        if f.suffix.lower() in (".html", ".htm"):
            title, content = strip_html(content)
        elif f.suffix.lower() in (".md", ".markdown"):
            m = re.search(r"^#\s+(.+)$", content, re.M)
            title = m.group(1).strip() if m else ""
        if not content.strip():
            raise IngestError(str(f), None, "text", "file has no text")
        yield Document(rel, title or f.stem.replace("_", " "), content, str(f), None, pos,
                       {"file": rel})


def read_wordnet(path: Path) -> Iterator[Document]:
    """One document per synset: ``lemma, lemma, …: gloss`` plus examples, titled by its first lemma."""
    from kira.kb.wordnet import iter_synsets, synset_text

    for pos, s in enumerate(iter_synsets(path)):
        yield Document(s.id, s.name, synset_text(s), str(path / ("data." + _POS_FILE[s.id[0]])), s.line, pos,
                       {"synset": s.id, "pos": s.pos, "lemmas": s.lemmas})


_POS_FILE = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
READERS = {"jsonl": read_jsonl, "csv": read_csv, "parquet": read_parquet, "dir": read_dir,
           "wordnet": read_wordnet}


# ---- windows ------------------------------------------------------------------------------------
def windows(text: str, words: int = 100, overlap: int = 0) -> list[str]:
    """DPR's passages: consecutive ``words``-word windows, each sharing ``overlap`` words with the last."""
    if words < 1:
        raise KiraError(f"passage words must be >= 1, got {words}")
    if not 0 <= overlap < words:
        raise KiraError(f"overlap must be in [0, words), got {overlap} for {words} words")
    toks = text.split()
    stride = words - overlap
    out = []
    for start in range(0, max(len(toks), 1), stride):
        if start and start + overlap >= len(toks):
            break
        out.append(" ".join(toks[start:start + words]))
    return out


def document_passages(doc: Document, source: str, words: int = 100, overlap: int = 0) -> list[Passage]:
    """A document's windows as passages (``words <= 0``: the whole document as one passage)."""
    wins = [doc.text.strip()] if words <= 0 else windows(doc.text, words, overlap)
    meta_base = {**doc.metadata, "doc_id": doc.doc_id, "source_path": doc.path, "position": doc.position}
    if doc.line is not None:
        meta_base["line"] = doc.line
    return [Passage(id=f"{source}:{doc.doc_id}:{w}", title=doc.title, text=t, source=source,
                    metadata={**meta_base, "window": w, "windows": len(wins)})
            for w, t in enumerate(wins)]


# ---- storing --------------------------------------------------------------------------------------
def _insert(store, batch: list[Passage]) -> None:
    if batch:
        store.add_passages(batch)


def iter_documents(kind: str, path: Path) -> Iterator[Document]:
    return READERS[kind](path)


def check_limits(doc: Document, max_chars: int) -> None:
    """Refuse, naming file and line, a document no index should hold: over ``ingest.max_chars``
    characters, or an id too long to be a Lucene term."""
    if len(doc.text) > max_chars:
        raise IngestError(doc.path, doc.line, "text", f"document {doc.doc_id!r:.80} has {len(doc.text):,} characters, "
                          f"over ingest.max_chars = {max_chars:,}; split it, or raise the limit in kira.toml")
    if len(doc.doc_id) > MAX_ID_CHARS:
        raise IngestError(doc.path, doc.line, "id", f"id of {len(doc.doc_id):,} characters (at most {MAX_ID_CHARS})")


def store_documents(store, docs: Iterable[Document], source: str, words: int, overlap: int,
                    max_chars: int = MAX_CHARS) -> tuple[int, int]:
    """Window and insert documents (caller holds the transaction). Returns (documents, passages)."""
    seen: dict[str, int | None] = {}
    n_docs = n_psg = 0
    buf: list[Passage] = []
    for doc in docs:
        check_limits(doc, max_chars)
        if doc.doc_id in seen:
            where = f" (first at line {seen[doc.doc_id]})" if seen[doc.doc_id] else ""
            raise IngestError(doc.path, doc.line, "id", f"duplicate document id {doc.doc_id!r}{where}")
        seen[doc.doc_id] = doc.line
        buf.extend(document_passages(doc, source, words, overlap))
        n_docs += 1
        if len(buf) >= INSERT_BATCH:
            _insert(store, buf)
            n_psg += len(buf)
            buf = []
    _insert(store, buf)
    n_psg += len(buf)
    return n_docs, n_psg


def ingest_source(store, spec: str, name: str | None = None, words: int = 100, overlap: int = 0,
                  replace: bool = False, max_chars: int = MAX_CHARS) -> str:
    """Ingest ``KIND:PATH`` as source ``name`` (default from the path); returns the source name.

    Re-ingesting the same input replaces the source's previous passages; a name held by another
    source is refused unless it is a text source and ``replace`` is given. All or nothing.
    """
    kind, path = parse_spec(spec)
    name = name or default_name(kind, path)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise KiraError(f"source name {name!r}: use letters, digits, '_', '.', '-'")
    if words > 0:
        windows("x", words, overlap)  # validate before touching the store
    if kind == "wordnet":
        words = 0  # one passage per synset, however long its gloss
    existing = claim_source_name(store, name, "text", str(path.resolve()), replace=replace)
    files = _files_of(kind, path)
    if not files:
        raise IngestError(str(path), None, None, f"no {', '.join(DIR_SUFFIXES)} files found")
    checksum = files_checksum(path, files)
    with store.transaction():
        if existing:  # drop the old passages but keep the sources row, so its version number counts up
            store.delete_passages([p.id for batch in store.iter_passages(name) for p in batch])
        n_docs, n_psg = store_documents(store, iter_documents(kind, path), name, words, overlap, max_chars)
        if n_docs == 0:
            raise IngestError(str(path), None, None, "source holds no documents")
        store.register_source(name, KIND_PREFIX + kind, str(path.resolve()), checksum, n_psg,
                              {"documents": n_docs, "words": words, "overlap": overlap,
                               "files": len(files)})
    return name
