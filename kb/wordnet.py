"""WordNet 3.0 read straight from its ``data.{noun,verb,adj,adv}`` files.

NLTK cannot read the copy shipped in /usr/share/wordnet, and we only need the data files, so we
parse the documented line format (wndb(5)) ourselves:

    offset lex_filenum ss_type w_cnt(hex) {word lex_id(hex)}×w_cnt p_cnt(3 digits)
    {pointer_symbol synset_offset pos source/target(hex)}×p_cnt [frames, verbs only] | gloss

Synset ids are ``<pos>.<offset>`` with the *file* part of speech (``n``/``v``/``a``/``r``; adjective
satellites ``s`` live in data.adj and are addressed as ``a`` by pointers), so they are stable across
runs and match pointer targets directly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kira.errors import IngestError
from kira.schema import Entity, Relation, Triple

DEFAULT_WORDNET_DIR = "/usr/share/wordnet"
DATA_FILES = {"n": "data.noun", "v": "data.verb", "a": "data.adj", "r": "data.adv"}

# pointer symbol -> relation name (wndb(5) / wninput(5)).
RELATION_NAMES: dict[str, str] = {
    "@": "hypernym",
    "@i": "instance hypernym",
    "~": "hyponym",
    "~i": "instance hyponym",
    "#m": "member holonym",
    "#s": "substance holonym",
    "#p": "part holonym",
    "%m": "member meronym",
    "%s": "substance meronym",
    "%p": "part meronym",
    "!": "antonym",
    "+": "derivationally related form",
    "&": "similar to",
    "^": "also see",
    "=": "attribute",
    "*": "entailment",
    ">": "cause",
    "$": "verb group",
    "<": "participle of verb",
    "\\": "pertainym",
    ";c": "domain of synset topic",
    ";r": "domain of synset region",
    ";u": "domain of synset usage",
    "-c": "member of domain topic",
    "-r": "member of domain region",
    "-u": "member of domain usage",
}

# Sentence templates for verbalizing WordNet facts (see kira.kb.verbalize).
TEMPLATES: dict[str, str] = {
    "@": "{subject} is a kind of {object}",
    "@i": "{subject} is an instance of {object}",
    "~": "{object} is a kind of {subject}",
    "~i": "{object} is an instance of {subject}",
    "#m": "{subject} is a member of {object}",
    "#p": "{subject} is a part of {object}",
    "#s": "{subject} is a substance of {object}",
    "%m": "{object} is a member of {subject}",
    "%p": "{object} is a part of {subject}",
    "%s": "{object} is a substance of {subject}",
    "!": "{subject} is the opposite of {object}",
    "&": "{subject} is similar to {object}",
    "*": "{subject} entails {object}",
    ">": "{subject} causes {object}",
    "=": "{object} is an attribute of {subject}",
    "\\": "{subject} pertains to {object}",
    ";c": "{subject} belongs to the topic {object}",
    ";r": "{subject} is used in the region {object}",
    ";u": "{subject} is a usage of {object}",
}

# Adjective markers such as "(p)" predicative, "(a)" attributive, "(ip)" immediately postnominal.
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")


@dataclass
class Synset:
    """One synset. ``pointers`` are (symbol, target_id, source_word_no, target_word_no); word
    numbers are 1-based, 0/0 meaning a semantic (synset-to-synset) pointer."""

    id: str
    pos: str  # ss_type: n, v, a, s, r
    lemmas: list[str]
    gloss: str
    examples: list[str] = field(default_factory=list)
    pointers: list[tuple[str, str, int, int]] = field(default_factory=list)
    lex_filenum: int = 0
    offset: str = ""
    line: int = 0

    @property
    def name(self) -> str:
        return self.lemmas[0] if self.lemmas else self.id


def synset_id(pos: str, offset: str) -> str:
    """The stable id of a synset: file pos (satellites → ``a``) and the 8-digit byte offset."""
    return f"{'a' if pos == 's' else pos}.{offset}"


def split_gloss(gloss: str) -> tuple[str, list[str]]:
    """Split ``definition; "example one"; "example two"`` into the definition and examples."""
    examples = re.findall(r'"([^"]*)"', gloss)
    definition = re.sub(r'"[^"]*"', "", gloss)
    definition = re.sub(r"(\s*;\s*)+$", "", definition.strip()).strip()
    definition = re.sub(r"\s*;\s*;\s*", "; ", definition)
    return definition, [e.strip() for e in examples if e.strip()]


def parse_line(line: str, path: str = "", lineno: int = 0) -> Synset:
    """Parse one data-file line; raises ``IngestError`` naming the field that is malformed."""
    data, _, gloss = line.partition(" | ")
    if not _:
        data, gloss = line.split("|", 1)[0], (line.split("|", 1)[1] if "|" in line else "")
    tok = data.split()

    def need(i: int, what: str) -> str:
        if i >= len(tok):
            raise IngestError(path, lineno, what, "line ends early")
        return tok[i]

    offset = need(0, "synset_offset")
    if not offset.isdigit():
        raise IngestError(path, lineno, "synset_offset", f"not a decimal offset: {offset!r}")
    try:
        lex_filenum = int(need(1, "lex_filenum"))
        ss_type = need(2, "ss_type")
        if ss_type not in "nvasr" or len(ss_type) != 1:
            raise IngestError(path, lineno, "ss_type", f"unknown synset type {ss_type!r}")
        w_cnt = int(need(3, "w_cnt"), 16)
        i = 4
        lemmas: list[str] = []
        for _w in range(w_cnt):
            word = _ADJ_MARKER.sub("", need(i, "word"))
            lemmas.append(word.replace("_", " "))
            i += 2  # word, lex_id
        p_cnt = int(need(i, "p_cnt"))
        i += 1
        pointers = []
        for _p in range(p_cnt):
            sym, target, pos, st = (need(i + k, "pointer") for k in range(4))
            if sym not in RELATION_NAMES:
                raise IngestError(path, lineno, "pointer_symbol", f"unknown pointer symbol {sym!r}")
            pointers.append((sym, synset_id(pos, target), int(st[:2], 16), int(st[2:], 16)))
            i += 4
    except ValueError as e:
        raise IngestError(path, lineno, "counts", f"bad number: {e}") from e
    definition, examples = split_gloss(gloss.strip())
    return Synset(id=synset_id(ss_type, offset), pos=ss_type, lemmas=lemmas, gloss=definition,
                  examples=examples, pointers=pointers, lex_filenum=lex_filenum, offset=offset,
                  line=lineno)


def iter_synsets(wordnet_dir: str | Path = DEFAULT_WORDNET_DIR,
                 pos: str | tuple[str, ...] = ("n", "v", "a", "r")) -> Iterator[Synset]:
    """Every synset of the data files in ``wordnet_dir`` (license header lines are skipped)."""
    wordnet_dir = Path(wordnet_dir)
    for p in (pos,) if isinstance(pos, str) else pos:
        path = wordnet_dir / DATA_FILES[p]
        if not path.exists():
            raise IngestError(str(path), None, None, "WordNet data file not found")
        with open(path, encoding="utf-8", errors="strict") as fh:
            lineno = 0
            while True:
                try:
                    line = fh.readline()
                except UnicodeDecodeError as e:
                    raise IngestError(str(path), lineno + 1, None, f"not UTF-8: {e}") from e
                if not line:
                    break
                lineno += 1
                if line.startswith("  ") or not line.strip():
                    continue
                yield parse_line(line.rstrip("\n"), str(path), lineno)


def synset_text(s: Synset) -> str:
    """One readable passage per synset: lemmas, definition and examples."""
    text = f"{', '.join(s.lemmas)}: {s.gloss}"
    if s.examples:
        text += ". Examples: " + "; ".join(s.examples)
    return text


class WordNetSource:
    """WordNet as a KB: synsets → entities (lemmas as aliases, gloss as description), pointer
    symbols → named relations, pointers → triples (lexical pointers too, at synset level).

    ``pos`` restricts parts of speech; ``relations`` restricts pointer symbols (e.g. ``("@", "~")``).
    """

    def __init__(self, name: str, paths: list[str] | None = None, *, pos: tuple[str, ...] = ("n", "v", "a", "r"),
                 relations: tuple[str, ...] | None = None, **_: object):
        self.name = name
        self.dir = Path(paths[0]) if paths else Path(DEFAULT_WORDNET_DIR)
        # CLI options arrive as strings ("n" or "n,v"); accept those as well as tuples
        self.pos = tuple(pos.split(",")) if isinstance(pos, str) else tuple(pos)
        self.relations = tuple(relations.split(",")) if isinstance(relations, str) else relations
        bad = [r for r in self.relations or () if r not in RELATION_NAMES]
        if bad or any(p not in DATA_FILES for p in self.pos):
            raise IngestError(str(self.dir), None, "options", f"unknown pos/pointer symbols: {bad or self.pos}")
        self.checksum_paths = [str(self.dir / DATA_FILES[p]) for p in pos]

    def iter_records(self) -> Iterator[Entity | Relation | Triple]:
        from kira.kb.sources import located

        syms = self.relations or tuple(RELATION_NAMES)
        for sym in syms:
            yield Relation(id=sym, kb=self.name, name=RELATION_NAMES[sym])
        seen: set[tuple[str, str, str]] = set()
        for s in iter_synsets(self.dir, self.pos):
            path = str(self.dir / DATA_FILES["a" if s.pos == "s" else s.pos])
            yield located(Entity(id=s.id, kb=self.name, name=s.name, aliases=s.lemmas[1:],
                                 description=s.gloss), path, s.line)
            for sym, target, _src, _dst in s.pointers:
                if sym not in syms or (target[0] not in self.pos):
                    continue
                key = (s.id, sym, target)
                if key in seen:  # lexical pointers repeat a synset pair for several words
                    continue
                seen.add(key)
                yield located(Triple(kb=self.name, head=s.id, relation=sym, tail=target), path, s.line)
