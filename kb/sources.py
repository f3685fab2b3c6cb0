"""Built-in knowledge sources: triples TSV/CSV, JSONL, RDF (N-Triples/Turtle), PyKEEN splits.

A source turns files into ``Entity``/``Relation``/``Triple`` records and tags each with the
(path, line) it came from (:func:`located` / :func:`origin`), so validation in
:mod:`kira.kb.plugin` can name the exact place of a dangling reference. Format errors (wrong
column count, invalid UTF-8, bad JSON) are raised here as ``IngestError`` before anything is stored.

Sources declare entities/relations only when their files do; ids that appear only in triples are
created implicitly by the plugin. WordNet lives in :mod:`kira.kb.wordnet`.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kira.errors import IngestError
from kira.jsonl import iter_jsonl
from kira.schema import Entity, Relation, Triple
from kira.textfile import decoded_lines

Record = Entity | Relation | Triple
SPLITS = ("train", "valid", "test")
BUNDLED_PYKEEN = ("nations", "kinships", "umls")


def located(rec: Record, path: str | Path, line: int | None) -> Record:
    """Attach the (path, line) a record came from (kept off the dataclass fields on purpose)."""
    rec.__dict__["_origin"] = (str(path), line)
    return rec


def origin(rec: Record) -> tuple[str, int | None]:
    return rec.__dict__.get("_origin", ("<unknown>", None))


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text) with strict UTF-8: an encoding error names its line."""
    for n, text in decoded_lines(path):
        yield n, text.rstrip("\r\n")


def _split_of(path: Path, default: str = "train") -> str:
    stem = path.stem.lower()
    for s in SPLITS:
        if stem == s or stem.endswith(("_" + s, "-" + s, "." + s)):
            return s
    return {"dev": "valid", "validation": "valid"}.get(stem, default)


def _need(fields: list[str], i: int, name: str, path: str, line: int) -> str:
    if i >= len(fields) or not fields[i].strip():
        raise IngestError(path, line, name, f"missing or empty (line has {len(fields)} column(s))")
    return fields[i].strip()


class TriplesFileSource:
    """Delimited triples ``head, relation, tail[, split]`` plus optional side files.

    ``paths`` may name roles explicitly as ``entities=FILE``, ``aliases=FILE``, ``relations=FILE``,
    ``triples=FILE``; otherwise a file whose name mentions entit/desc, alias or relation is taken
    as that side file. Side-file columns: entities ``id, name[, description]``; aliases
    ``id, alias[, alias…]``; relations ``id, name``. A header line (``head relation tail`` /
    ``id …``) is skipped. Split comes from a 4th column or the file name (train/valid/test).
    """

    def __init__(self, name: str, paths: list[str], *, delimiter: str | None = None, **_: Any):
        self.name = name
        self.delimiter = delimiter
        self.files: dict[str, list[Path]] = {"triples": [], "entities": [], "aliases": [], "relations": []}
        for p in paths:
            role, _, rest = str(p).partition("=")
            if rest and role in self.files:
                self.files[role].append(Path(rest))
                continue
            path = Path(p)
            low = path.name.lower()
            role = ("entities" if ("entit" in low or "desc" in low) else "aliases" if "alias" in low
                    else "relations" if "relation" in low else "triples")
            self.files[role].append(path)
        if not self.files["triples"]:
            raise IngestError(",".join(map(str, paths)), None, None, "no triples file given")
        # only an entity/relation file makes references in triples checkable
        self.declares_entities = bool(self.files["entities"])
        self.declares_relations = bool(self.files["relations"])

    def _rows(self, path: Path) -> Iterator[tuple[int, list[str]]]:
        if not path.exists():
            raise IngestError(str(path), None, None, "file not found")
        delim = self.delimiter or ("," if path.suffix.lower() == ".csv" else "\t")
        for n, text in iter_lines(path):
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            fields = next(csv.reader([text], delimiter=delim)) if delim == "," else text.split(delim)
            yield n, fields

    @staticmethod
    def _is_header(fields: list[str], first: str) -> bool:
        return bool(fields) and fields[0].strip().lower() in (first, "subject", "h", "entity", "entity_id")

    def iter_records(self) -> Iterator[Record]:
        for path in self.files["relations"]:
            for n, f in self._rows(path):
                if n == 1 and self._is_header(f, "id"):
                    continue
                rid = _need(f, 0, "id", str(path), n)
                yield located(Relation(id=rid, kb=self.name, name=f[1].strip() if len(f) > 1 and f[1].strip() else rid),
                              path, n)
        aliases: dict[str, list[str]] = {}
        alias_origin: dict[str, tuple[Path, int]] = {}
        for path in self.files["aliases"]:
            for n, f in self._rows(path):
                if n == 1 and self._is_header(f, "id"):
                    continue
                eid = _need(f, 0, "id", str(path), n)
                _need(f, 1, "alias", str(path), n)
                aliases.setdefault(eid, []).extend(a.strip() for a in f[1:] if a.strip())
                alias_origin.setdefault(eid, (path, n))
        declared: set[str] = set()
        for path in self.files["entities"]:
            for n, f in self._rows(path):
                if n == 1 and self._is_header(f, "id"):
                    continue
                eid = _need(f, 0, "id", str(path), n)
                name = f[1].strip() if len(f) > 1 and f[1].strip() else eid
                desc = f[2].strip() if len(f) > 2 else ""
                declared.add(eid)
                yield located(Entity(id=eid, kb=self.name, name=name, aliases=aliases.get(eid, []),
                                     description=desc), path, n)
        for eid, al in aliases.items():
            if eid not in declared:
                path, n = alias_origin[eid]
                if self.files["entities"]:
                    raise IngestError(str(path), n, "id", f"alias for unknown entity {eid!r}")
                yield located(Entity(id=eid, kb=self.name, name=eid, aliases=al), path, n)
        for path in self.files["triples"]:
            default_split = _split_of(path)
            for n, f in self._rows(path):
                if n == 1 and self._is_header(f, "head"):
                    continue
                if len(f) not in (3, 4):
                    raise IngestError(str(path), n, None, f"expected 3 or 4 columns (head, relation, tail[, split]), got {len(f)}")
                h, r, t = (_need(f, i, k, str(path), n) for i, k in enumerate(("head", "relation", "tail")))
                split = f[3].strip() if len(f) == 4 else default_split
                if split not in SPLITS:
                    raise IngestError(str(path), n, "split", f"unknown split {split!r} (train, valid, test)")
                yield located(Triple(kb=self.name, head=h, relation=r, tail=t, split=split), path, n)


def _first(obj: dict, keys: tuple[str, ...]) -> Any:
    for k in keys:
        if k in obj:
            return obj[k]
    return None


class JsonlTriplesSource:
    """One JSON object per line: a triple ``{"head","relation","tail"[,"split"]}`` (also
    ``h/r/t`` or ``subject/predicate/object``), an entity ``{"type":"entity","id","name",
    "aliases","description"}`` or a relation ``{"type":"relation","id","name"}``."""

    def __init__(self, name: str, paths: list[str], **_: Any):
        self.name = name
        self.paths = [Path(p) for p in paths]

    def iter_records(self) -> Iterator[Record]:
        for path in self.paths:
            if not path.exists():
                raise IngestError(str(path), None, None, "file not found")
            default_split = _split_of(path)
            for n, obj in iter_jsonl(path):
                yield located(self._record(obj, str(path), n, default_split), path, n)

    def _record(self, obj: dict, path: str, n: int, default_split: str) -> Record:
        kind = obj.get("type", "triple")

        def field(keys: tuple[str, ...], label: str) -> str:
            v = _first(obj, keys)
            if not isinstance(v, str) or not v.strip():
                raise IngestError(path, n, label, "missing or not a non-empty string")
            return v.strip()

        if kind == "entity":
            aliases = obj.get("aliases", [])
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise IngestError(path, n, "aliases", "must be a list of strings")
            eid = field(("id",), "id")
            return Entity(id=eid, kb=self.name, name=str(obj.get("name") or eid), aliases=aliases,
                          description=str(obj.get("description") or ""))
        if kind == "relation":
            rid = field(("id",), "id")
            return Relation(id=rid, kb=self.name, name=str(obj.get("name") or rid))
        if kind != "triple":
            raise IngestError(path, n, "type", f"unknown record type {kind!r} (triple, entity, relation)")
        split = obj.get("split", default_split)
        if split not in SPLITS:
            raise IngestError(path, n, "split", f"unknown split {split!r}")
        return Triple(kb=self.name, head=field(("head", "h", "subject"), "head"),
                      relation=field(("relation", "r", "predicate"), "relation"),
                      tail=field(("tail", "t", "object"), "tail"), split=split)


RDF_FORMATS = {".nt": "nt", ".ttl": "turtle", ".n3": "n3", ".rdf": "xml", ".xml": "xml", ".owl": "xml",
               ".jsonld": "json-ld", ".nq": "nquads", ".trig": "trig"}


def local_name(uri: str) -> str:
    """``http://x.org/ns#bornIn`` → ``born in`` (readable relation/entity names from URIs)."""
    tail = re.split(r"[#/:]", uri.rstrip("/#"))[-1] or uri
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", tail).replace("_", " ").split()
    if len(words) > 1:  # camelCase → words; keep acronyms (ISBN) as they are
        words = [w if w.isupper() and len(w) > 1 else w.lower() for w in words]
    return " ".join(words) or uri


LINE_BASED_RDF = ("nt", "nt11", "ntriples", "nquads")


def _bad_line_based_rdf(path: Path, fmt: str) -> int | None:
    """The first line of an N-Triples/N-Quads file rdflib refuses on its own (their statements are
    one per line, but rdflib's error does not say which line)."""
    import rdflib

    for n, text in iter_lines(path):
        if text.strip() and not text.lstrip().startswith("#"):
            try:
                rdflib.Graph().parse(data=text, format=fmt)
            except Exception:  # noqa: BLE001 - any refusal marks the line
                return n
    return None


class RdfSource:
    """N-Triples / Turtle / RDF-XML via rdflib. URIs are ids; ``rdfs:label``/``skos:prefLabel``/
    ``schema:name`` name entities, ``skos:altLabel`` adds aliases, ``rdfs:comment``/
    ``schema:description``/``dcterms:description`` describe them; other literal objects become
    literal entities (id ``literal:<text>``) so the fact is kept and verbalizable."""

    LABELS = ("http://www.w3.org/2000/01/rdf-schema#label", "http://www.w3.org/2004/02/skos/core#prefLabel",
              "http://schema.org/name", "http://xmlns.com/foaf/0.1/name")
    ALIASES = ("http://www.w3.org/2004/02/skos/core#altLabel",)
    DESCRIPTIONS = ("http://www.w3.org/2000/01/rdf-schema#comment", "http://schema.org/description",
                    "http://purl.org/dc/terms/description")

    def __init__(self, name: str, paths: list[str], *, format: str | None = None, **_: Any):
        self.name = name
        self.paths = [Path(p) for p in paths]
        self.format = format

    def _parse(self, path: Path):
        import rdflib

        if not path.exists():
            raise IngestError(str(path), None, None, "file not found")
        for _n, _text in iter_lines(path):  # encoding errors with line numbers before rdflib sees it
            pass
        fmt = self.format or RDF_FORMATS.get(path.suffix.lower()) or rdflib.util.guess_format(str(path)) or "turtle"
        g = rdflib.Graph()
        try:
            g.parse(str(path), format=fmt)
        except Exception as e:  # rdflib raises many types; they carry the line in their text
            m = re.search(r"line (\d+)", str(e), re.I)
            line = int(m.group(1)) if m else (_bad_line_based_rdf(path, fmt) if fmt in LINE_BASED_RDF else None)
            raise IngestError(str(path), line, None,
                              f"not valid {fmt}: {type(e).__name__}: {str(e)[:300]}") from e
        return g

    def iter_records(self) -> Iterator[Record]:
        from rdflib import Literal

        for path in self.paths:
            g = self._parse(path)
            names: dict[str, str] = {}
            aliases: dict[str, list[str]] = {}
            descs: dict[str, str] = {}
            nodes: set[str] = set()
            relations: set[str] = set()
            triples: list[Triple] = []
            for s, p, o in sorted(g, key=lambda t: tuple(map(str, t))):
                s_, p_ = str(s), str(p)
                nodes.add(s_)
                if isinstance(o, Literal):
                    val = str(o)
                    if p_ in self.LABELS:
                        names.setdefault(s_, val)
                        continue
                    if p_ in self.ALIASES:
                        aliases.setdefault(s_, []).append(val)
                        continue
                    if p_ in self.DESCRIPTIONS:
                        descs.setdefault(s_, val)
                        continue
                    o_ = "literal:" + val
                    names.setdefault(o_, val)
                else:
                    o_ = str(o)
                nodes.add(o_)
                relations.add(p_)
                triples.append(Triple(kb=self.name, head=s_, relation=p_, tail=o_))
            for r in sorted(relations):
                yield located(Relation(id=r, kb=self.name, name=local_name(r)), path, None)
            for e in sorted(nodes):
                yield located(Entity(id=e, kb=self.name, name=names.get(e) or local_name(e),
                                     aliases=aliases.get(e, []), description=descs.get(e, "")), path, None)
            for t in triples:
                yield located(t, path, None)


def pykeen_dataset_dir(name: str) -> Path:
    """The directory of a dataset bundled inside the pykeen package, found without importing it."""
    spec = importlib.util.find_spec("pykeen")
    if spec is None or not spec.submodule_search_locations:
        raise IngestError(name, None, None, "pykeen is not installed (pip install 'kira[bench]')")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / name


class PykeenSplitsSource:
    """A directory with ``train.txt``/``valid.txt``/``test.txt`` (tab-separated h, r, t), as PyKEEN
    and most link-prediction datasets ship them. ``nations``/``kinships``/``umls`` name PyKEEN's
    bundled copies. Entity names are the ids with underscores as spaces."""

    def __init__(self, name: str, paths: list[str], **_: Any):
        self.name = name
        if len(paths) != 1:
            raise IngestError(",".join(map(str, paths)), None, None, "pykeen source takes one directory")
        p = str(paths[0])
        self.dir = pykeen_dataset_dir(p) if p in BUNDLED_PYKEEN and not Path(p).exists() else Path(p)
        if not self.dir.is_dir():
            raise IngestError(str(self.dir), None, None, "not a directory")
        if not (self.dir / "train.txt").exists():
            raise IngestError(str(self.dir / "train.txt"), None, None, "split file not found")
        self.checksum_paths = [str(self.dir / f"{s}.txt") for s in SPLITS if (self.dir / f"{s}.txt").exists()]

    def iter_records(self) -> Iterator[Record]:
        seen: set[str] = set()
        rels: set[str] = set()
        for split in SPLITS:
            path = self.dir / f"{split}.txt"
            if not path.exists():
                continue
            for n, text in iter_lines(path):
                if not text.strip():
                    continue
                f = text.split("\t")
                if len(f) != 3:
                    raise IngestError(str(path), n, None, f"expected 3 tab-separated columns, got {len(f)}")
                h, r, t = (_need(f, i, k, str(path), n) for i, k in enumerate(("head", "relation", "tail")))
                for e in (h, t):
                    if e not in seen:
                        seen.add(e)
                        yield located(Entity(id=e, kb=self.name, name=e.replace("_", " ")), path, n)
                if r not in rels:
                    rels.add(r)
                    yield located(Relation(id=r, kb=self.name, name=r.replace("_", " ")), path, n)
                yield located(Triple(kb=self.name, head=h, relation=r, tail=t, split=split), path, n)
