"""Synthetic QA data from the knowledge store, because no QA data set exists offline.

THE OUTPUT IS SYNTHETIC. Questions are templated from KB triples (one question per
(subject, relation): the answers are every object of that pair, each with its aliases) and, for
plain text passages, cloze-style from sentences (a capitalised phrase or number is replaced by
"what", as in unsupervised QA by cloze translation). Such questions teach a reader to find the
object of a relation in a verbalized passage; they are not natural questions, and numbers measured
on them say so.

Templates: several phrasings per relation name (or id), chosen per question by a seeded hash, so
one relation is asked several ways; a user file (YAML or JSON, ``relation: [pattern, …]`` using
``{subject}`` and optionally ``{relation}``) adds or overrides them; any other relation falls back
to generic phrasings built from the relation's name.

Split: ``heldout`` vs ``train`` is decided by a hash of the *subject entity*, so evaluating on the
held-out split never asks about a subject the reader was trained on.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kira.errors import IngestError
from kira.jsonl import iter_jsonl
from kira.kb.answer_types import TYPE_RELATIONS

SYNTHETIC_NOTE = "synthetic: generated from KB triples / passages by kira.reader.questions"

DEFAULT_TEMPLATES: dict[str, list[str]] = {
    # several phrasings per relation, the way people ask; {subject} may carry an article ("a dog")
    "hypernym": ["What is {subject} a kind of?", "{subject} is a type of what?",
                 "What is a more general term for {subject}?", "What kind of thing is {subject}?",
                 "What category does {subject} belong to?", "{subject} is a kind of what?",
                 "What is {subject} classified as?", "What sort of thing is {subject}?",
                 "What broader class does {subject} fall under?", "What type of thing is {subject}?"],
    "instance hypernym": ["What is {subject} an instance of?", "{subject} is an example of what?",
                          "What kind of thing is {subject}?", "What is {subject}?", "{subject} is a what?",
                          "What type of thing is {subject}?", "What was {subject}?",
                          "What category is {subject} in?"],
    "hyponym": ["What is a kind of {subject}?", "Name a type of {subject}.", "What is a more specific kind of {subject}?",
                "Give an example of {subject}.", "What is one type of {subject}?"],
    "instance hyponym": ["What is an instance of {subject}?", "Name an example of {subject}.",
                         "Give one example of {subject}."],
    "part holonym": ["What is {subject} a part of?", "{subject} is part of what?", "What contains {subject} as a part?",
                     "What larger thing includes {subject}?", "Where is {subject} found?", "What is {subject} in?",
                     "{subject} forms part of what?", "Which whole is {subject} a part of?",
                     "Where is {subject} located?", "In which place is {subject}?"],
    "part meronym": ["What is a part of {subject}?", "Name a part of {subject}.", "What does {subject} have as a part?",
                     "What is one component of {subject}?", "What part does {subject} have?",
                     "What is found in {subject}?", "What does {subject} contain?"],
    "member holonym": ["What is {subject} a member of?", "{subject} belongs to what group?",
                       "What group does {subject} belong to?", "Which group includes {subject}?",
                       "What is {subject} one of the members of?", "Which family or genus is {subject} in?",
                       "{subject} is a member of what?", "What organization is {subject} part of?"],
    "member meronym": ["What is a member of {subject}?", "Name a member of {subject}.",
                       "Who or what belongs to {subject}?", "Which member does {subject} have?",
                       "What does {subject} include as a member?"],
    "substance holonym": ["What is {subject} a substance of?", "What contains the substance {subject}?",
                          "What is {subject} an ingredient of?", "{subject} is found in what substance?",
                          "What is made with {subject}?"],
    "substance meronym": ["What substance is {subject} made of?", "What is {subject} made of?",
                          "What is {subject} composed of?", "What material makes up {subject}?",
                          "What does {subject} consist of?", "What is {subject} made from?",
                          "What substance does {subject} contain?"],
    "antonym": ["What is the opposite of {subject}?", "What is an antonym of {subject}?",
                "What word means the opposite of {subject}?", "What is the antonym for {subject}?",
                "What's the opposite of {subject}?", "Which word is opposite in meaning to {subject}?",
                "What contrasts with {subject}?"],
    "similar to": ["What is similar to {subject}?", "Name something similar to {subject}.",
                   "What word is close in meaning to {subject}?", "What is like {subject}?"],
    "also see": ["What is related to {subject}?", "What should one also see for {subject}?"],
    "attribute": ["What attribute relates to {subject}?", "{subject} is a value of which attribute?",
                  "What quality does {subject} describe?", "{subject} describes what property?"],
    "entailment": ["What does {subject} entail?", "What does {subject} involve doing?",
                   "If you {subject}, what else do you do?"],
    "cause": ["What does {subject} cause?", "What is caused by {subject}?", "What results from {subject}?",
              "What is the effect of {subject}?"],
    "verb group": ["What verb is grouped with {subject}?"],
    "pertainym": ["What does {subject} pertain to?", "What noun is {subject} related to?",
                  "{subject} relates to what?"],
    "derivationally related form": ["What word is derived from {subject}?",
                                    "What is a derivationally related form of {subject}?",
                                    "What word is related in form to {subject}?"],
    "domain of synset topic": ["What topic does {subject} belong to?", "In what field is {subject} used?",
                               "{subject} is a term from which field?", "What subject area is {subject} from?"],
    "domain of synset region": ["In what region is {subject} used?", "Where is the word {subject} used?"],
    "domain of synset usage": ["What usage domain does {subject} belong to?", "What kind of usage is {subject}?"],
    "member of domain topic": ["What term belongs to the topic {subject}?"],
    "member of domain region": ["What belongs to the region {subject}?"],
    "member of domain usage": ["What term has the usage {subject}?"],
}
# Typed phrasings: the wh-phrase names the answer's type ("Which organ contains the retina?"), the
# way people narrow a question; ``{type}`` is the head noun of the answer entity's own class
# (``type_word``). Inverse word orders ("Which organ contains …", "… belongs to which family?")
# are here because people ask a fact from either end.
TYPED_TEMPLATES: dict[str, list[str]] = {
    "hypernym": ["What kind of {type} is {subject}?", "{subject} is which kind of {type}?",
                 "What type of {type} is {subject}?", "{subject} is a kind of what {type}?"],
    "instance hypernym": ["What kind of {type} is {subject}?", "{subject} is which type of {type}?",
                          "Which {type} is {subject}?", "{subject} was what kind of {type}?"],
    "part holonym": ["Which {type} is {subject} part of?", "{subject} is part of which {type}?",
                     "Which {type} contains {subject}?", "Which {type} has {subject}?", "In which {type} is {subject}?",
                     "Which {type} is {subject} in?", "{subject} is found in which {type}?",
                     "What {type} is {subject} located in?"],
    "part meronym": ["Which {type} is part of {subject}?", "What {type} does {subject} have?",
                     "Which {type} is found in {subject}?", "{subject} contains which {type}?"],
    "member holonym": ["Which {type} does {subject} belong to?", "{subject} belongs to which {type}?",
                       "{subject} is a member of which {type}?", "Which {type} is {subject} in?",
                       "Which {type} includes {subject}?", "To which {type} does {subject} belong?"],
    "member meronym": ["Which {type} is a member of {subject}?", "Which {type} belongs to {subject}?"],
    "substance meronym": ["Which {type} is {subject} made of?", "What {type} is {subject} made from?",
                          "{subject} is made of which {type}?", "Which {type} makes up {subject}?"],
    "substance holonym": ["Which {type} contains {subject}?", "{subject} is found in which {type}?",
                          "Which {type} is made with {subject}?"],
}
# relations whose object is the subject's class: where ``type_word`` reads an entity's type
_ABSTRACT_TYPES = frozenset(["entity", "thing", "object", "abstraction", "whole", "unit", "part", "physical_entity", "matter", "group", "relation", "attribute", "act", "event", "state", "measure", "communication", "psychological_feature", "causal_agent", "artifact", "instrumentality"])


def type_word(class_name: str) -> str | None:
    """The head noun of a class name, lower-cased ("sense organ" -> "organ", "Asian country" ->
    "country"); None for classes too abstract to narrow a question ("entity", "whole")."""
    words = re.findall(r"[A-Za-z][\w'-]*", class_name.split(",")[0])
    if not words:
        return None
    w = words[-1].lower()
    return None if w in _ABSTRACT_TYPES or len(w) < 3 else w


GENERIC = ["What is the {relation} of {subject}?", "{subject} has which {relation}?",
           "Which entity is the {relation} of {subject}?"]


def load_templates(path: str | Path | None) -> dict[str, list[str]]:
    """Default templates updated by a user YAML/JSON file (``relation: pattern or [patterns]``)."""
    out = {k: list(v) for k, v in DEFAULT_TEMPLATES.items()}
    if path is None:
        return out
    p = Path(path)
    if not p.exists():
        raise IngestError(str(p), None, None, "question templates file not found")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as e:
        line = getattr(e, "lineno", None) or getattr(getattr(e, "problem_mark", None), "line", None)
        raise IngestError(str(p), line, None, f"cannot parse question templates: {e}") from e
    if not isinstance(data, dict):
        raise IngestError(str(p), None, None, "question templates must map relation -> pattern(s)")
    for rel, pats in data.items():
        pats = [pats] if isinstance(pats, str) else pats
        if not isinstance(pats, list) or not pats or not all(isinstance(x, str) and "{subject}" in x for x in pats):
            raise IngestError(str(p), None, str(rel), "each pattern must be a string using {subject}")
        out[str(rel)] = pats
    return out


def heldout_split(subject: str, heldout: float, seed: int = 0) -> str:
    """``heldout`` for a stable hash-chosen fraction of subjects, else ``train``."""
    h = int(hashlib.md5(f"{seed}:{subject}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "heldout" if h < heldout else "train"


def _pick(options: list[str], key: str, seed: int) -> str:
    return options[int(hashlib.md5(f"{seed}:{key}".encode()).hexdigest()[:8], 16) % len(options)]


def _name_counts(store, kb: str) -> Counter[str]:
    """How many entities of ``kb`` carry each (lower-cased) name; only names shared by several."""
    if hasattr(store, "execute"):
        rows = store.execute("SELECT lower(name), count(*) FROM entities WHERE kb = ? GROUP BY 1 HAVING count(*) > 1",
                             [kb]).fetchall()
        return Counter(dict(rows))
    return Counter(e.name.lower() for e in store.iter_entities(kb))


def full_relations(by_relation: dict[str, int], max_share: float, warmup: int = 10) -> frozenset[str]:
    """Relations that already hold ``max_share`` of the relation questions asked so far (or an even
    share, when fewer relations than ``1 / max_share`` exist: the cap must leave one open)."""
    total = sum(by_relation.values())
    cap = max(max_share, 1 / max(1, len(by_relation))) * total
    return frozenset() if total < warmup else frozenset(r for r, c in by_relation.items() if c > cap)


def questions_from_kb(store, kb: str, templates: dict[str, list[str]] | None = None, heldout: float = 0.1,
                      max_answers: int = 5, limit: int | None = None, seed: int = 0,
                      skip_ambiguous: bool = True, relations: Iterable[str] | None = None,
                      max_relation_share: float = 0.25) -> list[dict[str, Any]]:
    """One question per (subject, relation) of ``kb``; answers are all objects with their aliases.
    With ``limit``, no relation takes more than ``max_relation_share`` of the questions
    (``full_relations``): a KB's most common relation would otherwise be most of them.

    ``skip_ambiguous`` drops subjects whose name several entities share (WordNet's "bank"), since
    the question could not say which one is meant; ``max_answers`` drops list-like facts.
    """
    templates = templates if templates is not None else load_templates(None)
    rel_names = {r.id: r.name for r in store.list_relations(kb)}
    wanted = set(relations) if relations else None
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    class_of: dict[str, str] = {}  # entity -> its class (first type relation), for typed phrasings
    for t in store.iter_triples(kb):
        if rel_names.get(t.relation, t.relation) in TYPE_RELATIONS:
            class_of.setdefault(t.head, t.tail)
        if wanted and t.relation not in wanted and rel_names.get(t.relation) not in wanted:
            continue
        groups[(t.head, t.relation)].append(t.tail)
    if not groups:
        return []
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    objects = {x for v in groups.values() for x in v}
    ids = sorted({h for h, _ in keys} | objects | {class_of[x] for x in objects if x in class_of})
    entities = {}
    for i in range(0, len(ids), 20_000):
        entities.update({e.id: e for e in store.get_entities(kb, ids[i:i + 20_000])})
    name_count = _name_counts(store, kb) if skip_ambiguous else Counter()
    out = []
    asked: dict[str, int] = defaultdict(int)
    for head, rel in keys:
        if limit and rel in full_relations(asked, max_relation_share):
            continue
        e = entities.get(head)
        if e is None or (skip_ambiguous and name_count[e.name.lower()] > 1):
            continue
        tails = sorted(set(groups[(head, rel)]))
        if len(tails) > max_answers:
            continue
        answers: list[str] = []
        for tid in tails:
            te = entities.get(tid)
            for a in ([te.name, *te.aliases] if te else [tid]):
                if a and a not in answers and a.lower() != e.name.lower():
                    answers.append(a)
        if not answers:
            continue
        rname = rel_names.get(rel, rel)
        pats = templates.get(rel) or templates.get(rname) or GENERIC
        typed = TYPED_TEMPLATES.get(rname)
        types = {type_word(entities[class_of[t]].name) if class_of.get(t) in entities else None
                 for t in tails} if typed else {None}
        if typed and len(types) == 1 and None not in types and _pick(["typed", "plain"], f"{head}|{rel}|typed", seed) == "typed":
            question = _pick(typed, f"{head}|{rel}", seed).format(subject=e.name, type=types.pop())
        else:
            question = _pick(pats, f"{head}|{rel}", seed).format(subject=e.name, relation=rname)
        out.append({"question": question[:1].upper() + question[1:], "answers": answers, "subject": head,
                    "subject_name": e.name, "relation": rname, "kb": kb,
                    "split": heldout_split(head, heldout, seed), "source": f"kb:{kb}", "synthetic": True})
        asked[rel] += 1
        if limit and len(out) >= limit:
            break
    return out


_SENT = re.compile(r"(?<=[.!?])\s+")
_CANDIDATE = re.compile(r"\b(?:[A-Z][\w'-]*(?:\s+(?:of\s+|de\s+)?[A-Z][\w'-]*)*|\d[\d,.]*)\b")


def cloze_questions(title: str, text: str) -> list[tuple[str, str]]:
    """(question, answer) pairs: a capitalised phrase or number in a sentence replaced by "what"."""
    out = []
    for sent in _SENT.split(text.strip()):
        sent = sent.strip()
        if len(sent.split()) < 5:
            continue
        for m in _CANDIDATE.finditer(sent):
            ans = m.group(0).strip(" ,.")
            if m.start() == 0 or not ans or ans.lower() in title.lower() or ans.lower() in ("i",):
                continue
            q = (sent[:m.start()] + "what" + sent[m.start() + len(ans):]).rstrip(" .!?") + "?"
            out.append((q[:1].upper() + q[1:], ans))
    return out


def questions_from_passages(store, source: str | None = None, heldout: float = 0.1, limit: int | None = None,
                            seed: int = 0, per_passage: int = 1) -> list[dict[str, Any]]:
    """Cloze questions over text passages (KB-verbalized passages are skipped: their triples
    already give better questions); held out by passage title (the text's subject)."""
    kbs = set(store.list_kbs())
    out = []
    for batch in store.iter_passages(source):
        for p in batch:
            if p.source in kbs or (p.metadata or {}).get("kind") in ("kb_fact", "table"):
                continue
            qas = cloze_questions(p.title or "", p.text or "")
            random.Random(f"{seed}:{p.id}").shuffle(qas)
            for q, a in qas[:per_passage]:
                subject = p.title or p.id
                out.append({"question": q, "answers": [a], "subject": subject, "passage_id": p.id,
                            "split": heldout_split(subject, heldout, seed), "source": f"text:{p.source}",
                            "synthetic": True})
                if limit and len(out) >= limit:
                    return out
    return out


def write_questions(records: Iterable[dict[str, Any]], path: str | Path) -> int:
    from kira.jsonl import write_jsonl

    return write_jsonl(path, records)


def read_questions(path: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """QA records ``{"question", "answers", ["contexts": [{"title","text"}]]}``; bad lines raise
    ``IngestError`` naming the file, line and field."""
    p = Path(path)
    out = []
    for ln, r in iter_jsonl(p):
        if not isinstance(r.get("question"), str) or not r["question"].strip():
            raise IngestError(str(p), ln, "question", "must be a non-empty string")
        ans = r.get("answers")
        if isinstance(ans, str):
            r["answers"] = ans = [ans]
        if not isinstance(ans, list) or not ans or not all(isinstance(a, str) for a in ans):
            raise IngestError(str(p), ln, "answers", "must be a non-empty list of strings")
        ctx = r.get("contexts")
        if ctx is not None and (not isinstance(ctx, list) or not all(
                isinstance(c, dict) and isinstance(c.get("text"), str) for c in ctx)):
            raise IngestError(str(p), ln, "contexts", "must be a list of {\"title\", \"text\"} objects")
        if split is None or r.get("split", "train") == split:
            out.append(r)
    return out
