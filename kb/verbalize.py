"""KB facts as text (TeKGen / KELM style), so BM25 and dense retrieval can find them.

Triples are grouped by subject; each group becomes one passage (chunked when a subject has many
facts) titled by the subject's name, whose text starts with every name of the subject and its
description (``dog, domestic dog, Canis familiaris: a member of the genus Canis …``), then the
linearized facts ``subject, relation: object, relation: object`` and one templated sentence per
fact. An entity with a description or aliases but no facts still gets its one passage, so a KB's
passages cover every entity once and no separate text copy of the same glosses is needed.
Templates come from a per-KB YAML/JSON file mapping relation id or name to a pattern with
``{subject}``/``{object}`` (and ``{relation}``); unknown relations fall back to
``"{subject} has {relation} {object}."``. Provenance (the triples, the KB) rides in metadata and
the passage ``source`` is the KB name, so removing the KB removes its passages.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

from kira.errors import IngestError
from kira.schema import Entity, Passage, Relation, Triple

FALLBACK = "{subject} has {relation} {object}."


def load_templates(templates: str | Path | dict[str, str] | None) -> dict[str, str]:
    """Templates from a dict or a ``.json``/``.yaml``/``.yml`` file; every value must be a string
    that uses ``{subject}`` and ``{object}``."""
    if templates is None:
        return {}
    if isinstance(templates, dict):
        data, path = templates, "<templates>"
    else:
        path = str(templates)
        p = Path(templates)
        if not p.exists():
            raise IngestError(path, None, None, "templates file not found")
        text = p.read_text(encoding="utf-8")
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                data = json.loads(text)
        except Exception as e:
            line = getattr(e, "lineno", None) or getattr(getattr(e, "problem_mark", None), "line", None)
            raise IngestError(path, line, None, f"cannot parse templates: {e}") from e
    if not isinstance(data, dict):
        raise IngestError(path, None, None, "templates must map relation → pattern")
    for k, v in data.items():
        if not isinstance(v, str) or "{subject}" not in v or "{object}" not in v:
            raise IngestError(path, None, str(k), "template must be a string using {subject} and {object}")
    return {str(k): v for k, v in data.items()}


def sentence(template: str, subject: str, relation: str, obj: str) -> str:
    s = template.format(subject=subject, object=obj, relation=relation).strip()
    s = s[:1].upper() + s[1:]
    return s if s.endswith((".", "!", "?")) else s + "."


def entity_passage_id(kb: str, entity: str, chunk: int = 0) -> str:
    """Id of an entity's verbalized passage (chunk 0 opens with its names and description)."""
    return f"{kb}:{entity}:{chunk}"


def verbalize_kb(kb: str, entities: dict[str, Entity], relations: dict[str, Relation],
                 triples: Iterable[Triple], templates: dict[str, str] | None = None,
                 max_facts: int = 16, style: str = "both") -> Iterator[Passage]:
    """One passage per subject (per ``max_facts`` facts). ``style``: both | linear | sentences.

    Ids are ``<kb>:<subject id>:<chunk>``: stable across re-ingests of the same KB.
    """
    if style not in ("both", "linear", "sentences"):
        raise ValueError("style must be both, linear or sentences")
    templates = templates or {}
    by_subject: dict[str, list[Triple]] = defaultdict(list)
    for t in triples:
        by_subject[t.head].append(t)
    for eid, e in entities.items():  # described entities without facts: a passage of their own
        if eid not in by_subject and (e.description or e.aliases):
            by_subject[eid] = []

    def ename(eid: str) -> str:
        e = entities.get(eid)
        return e.name if e else eid

    def rname(rid: str) -> str:
        r = relations.get(rid)
        return r.name if r else rid

    for subject in sorted(by_subject):
        facts = sorted({(t.relation, t.tail) for t in by_subject[subject]}, key=lambda x: (rname(x[0]), ename(x[1])))
        sname = ename(subject)
        ent = entities.get(subject)
        desc = ent.description if ent else ""
        names = ", ".join(dict.fromkeys([sname, *(ent.aliases if ent else [])]))
        for chunk, start in enumerate(range(0, max(len(facts), 1), max_facts)):
            part = facts[start:start + max_facts]
            pieces = []
            if chunk == 0 and desc:
                pieces.append(f"{names}: {desc.rstrip('.')}.")
            elif chunk == 0 and names != sname:
                pieces.append(f"{names}.")
            if not part:
                if pieces:
                    yield Passage(id=entity_passage_id(kb, subject), title=sname, text=" ".join(pieces), source=kb,
                                  metadata={"kb": kb, "entity": subject, "chunk": 0, "kind": "kb_fact", "triples": []})
                break
            if style in ("both", "linear"):
                pieces.append(sname + ", " + ", ".join(f"{rname(r)}: {ename(o)}" for r, o in part) + ".")
            if style in ("both", "sentences"):
                for r, o in part:
                    tpl = templates.get(r) or templates.get(rname(r)) or FALLBACK
                    pieces.append(sentence(tpl, sname, rname(r), ename(o)))
            yield Passage(
                id=entity_passage_id(kb, subject, chunk), title=sname, text=" ".join(pieces), source=kb,
                metadata={"kb": kb, "entity": subject, "chunk": chunk, "kind": "kb_fact",
                          "triples": [[subject, r, o] for r, o in part],
                          # readable: relation names (hypernym), not ids or pointer symbols (@)
                          "facts": [[sname, rname(r), ename(o)] for r, o in part]},
            )
