"""Unsupervised QA data from ANY text: questions, answers and the passage that holds them.

THE OUTPUT IS SYNTHETIC. No QA data set exists offline, so readers learn from questions kira
writes about its own passages (unsupervised QA: cloze translation, Lewis et al. 2019; template
questions, Fabbri et al. 2020). Every passage -- a jsonl document, a WordNet gloss, a verbalized
KB fact, a table row -- yields:

* **description -> name** questions: the passage's *own subject* (its title, the lemmas before
  ``lemma, lemma: gloss``, the last part of a dotted name) is the answer to a question built from
  its definition: "What is the word for <gloss>?", "Which river flows through Florence?" (from
  "a river in Tuscany that flows through Florence"), "Who invented the saxophone?" (a person's
  gloss), "Which math function returns the gcd of the integers?" (a docstring). The description is
  cut to a fragment, synonyms are swapped and articles dropped, so the question does not simply
  copy the passage's words.
* **span** questions whose wh-word matches the answer's type: years and life dates ("When was X
  born?"), quantities ("How many feet high is X?"), numbers, named entities after a preposition
  ("Where is X located?"), KB relations from verbalized facts ("What is X a part of?"), and for
  code documentation exceptions, default values, parameters and return values read from the
  signature and docstring.
* **negatives**: for each question, passages that share its rarest words but not its answer (the
  reader's passage selector learns to reject them; a question read only over them is unanswerable,
  which is what the no-answer calibration needs).

Records are ``{question, answers, qtype, wh, answer_type, passage_id, title, text, split,
negatives: [{id, title, text}], synthetic: true}``; ``split`` is ``heldout`` for a hash-chosen
fraction of *passages and answer entities* (a held-out answer string never appears as a training
answer), so held-out figures measure reading, not memory. Everything is deterministic given the seed.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kira.reader.questions import full_relations

GENERATOR_VERSION = "gen-5"

def _words(s: str) -> frozenset[str]:
    return frozenset(s.split())


_WORD = re.compile(r"[A-Za-z0-9][\w'-]*")
STOP = _words("""a an the of in on at to for from by with and or but is are was were be been being it its this that
these those which who whom whose what when where why how as into than then there their them they he she his her
not no do does did has have had can could will would shall should may might must also such any some each every
one ones used using use usually especially often very more most other another about over under""")

PERSON_HEADS = _words("""person man woman writer poet composer musician painter philosopher physicist chemist
mathematician statesman president king queen general leader singer actor actress astronomer inventor explorer
scientist novelist dramatist playwright sculptor architect engineer economist biologist saint apostle emperor
pope prophet author pianist violinist conductor dancer comedian film_maker filmmaker director historian lawyer
physician surgeon psychologist sociologist anthropologist geologist naturalist botanist zoologist theologian
reformer revolutionary soldier admiral navigator aviator astronaut philanthropist industrialist businessman
financier journalist critic educator teacher painter printmaker illustrator cartoonist chief ruler pharaoh
prince princess duke tsar czar sultan khan goddess god hero heroine""")
PLACE_HEADS = _words("""city town river country state region island mountain lake sea ocean capital port
province continent desert peninsula valley republic kingdom village county district bay gulf strait canal
archipelago range volcano waterfall falls peak plateau""")
UNITS = _words("""feet foot miles mile meters metres meter metre kilometers kilometres km inches inch yards
years year days day hours hour minutes minute seconds second pounds pound kilograms kg grams tons degrees
percent people members species strings legs sides players cents""")
SYNONYMS = {
    "large": "big", "big": "large", "small": "little", "little": "small", "person": "someone",
    "return": "give", "returns": "gives", "create": "make", "creates": "makes", "make": "create",
    "having": "with", "containing": "holding", "usually": "typically", "often": "frequently",
    "young": "baby", "female": "woman", "male": "man", "quickly": "fast", "fast": "quickly",
    "device": "tool", "instrument": "tool", "building": "structure", "used": "employed",
    "convert": "turn", "converts": "turns", "remove": "delete", "removes": "deletes", "given": "specified",
    "object": "value", "string": "str", "begin": "start", "beginning": "start", "end": "finish",
    "very": "really", "an": "a", "water": "liquid", "highest": "tallest",
}
EXCEPTION = re.compile(r"\b([A-Z]\w*(?:Error|Exception|Warning|Exit|Interrupt|Iteration))\b")
SIGNATURE = re.compile(r"^([A-Za-z_][\w.]*)\(([^()]*(?:\([^()]*\)[^()]*)*)\)\s*(?:->\s*[^\s]+\s*)?")
LIFE = re.compile(r"\((?:born )?(?:c\. )?(\d{3,4})(?: BC)?\s*[-–]\s*(\d{2,4})(?: BC)?\)")
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?:\s+(\w+))?")
CAPS = re.compile(r"\b[A-Z][a-z][\w'-]*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w'-]*)*")
RELATIVE = re.compile(r"\b(that|which|who|whose|where)\b")
PREPS = ("of", "in", "on", "at", "from", "for", "with", "by", "near", "to", "into", "between", "located", "found")
VERB_STARTS = _words("""return returns create creates make makes convert converts compute computes get gets set
sets remove removes add adds test tests check checks open opens close closes read reads write writes find finds
raise raises build builds parse parses format formats call calls run runs copy copies move moves delete deletes
change changes cause causes become becomes give gives take takes put puts go goes come comes move be have do
turn turns keep keeps bring brings hold holds show shows send sends apply applies wait waits split splits join
joins encode encodes decode decodes load loads dump dumps initialize initializes register registers
""")


def _h(*parts: Any) -> int:
    return int(hashlib.md5(":".join(map(str, parts)).encode()).hexdigest()[:12], 16)


def norm(s: str) -> str:
    from kira.retriever.text import normalize_answer

    return normalize_answer(s)


def heldout_of(key: str, fraction: float, seed: int) -> bool:
    return fraction > 0 and (_h(seed, "heldout", key.lower()) % 10_000) / 10_000 < fraction


@dataclass
class Doc:
    """A passage to write questions about: what the reader will see (``title``, ``text``)."""

    id: str
    title: str
    text: str
    source: str = ""
    kind: str = "passage"  # passage | kb_fact | table
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class QA:
    question: str
    answers: list[str]
    qtype: str
    wh: str
    answer_type: str


# ---- reading a passage: its subject's names, its description ------------------------------------
def subject_names(doc: Doc) -> list[str]:
    """The names of what the passage describes: lemmas of ``a, b: gloss``, the title, the last
    component of a dotted (code) name."""
    names: list[str] = []
    head, sep, _ = doc.text.partition(": ")
    if sep and len(head) < 120 and doc.title and doc.title.lower() in [x.strip().lower() for x in head.split(",")]:
        names += [x.strip() for x in head.split(",") if x.strip()]
    if doc.title:
        names.insert(0, doc.title.strip())
        if "." in doc.title and " " not in doc.title:
            names.append(doc.title.rsplit(".", 1)[-1])
    out: list[str] = []
    for n in names:
        if n and n.lower() not in [o.lower() for o in out]:
            out.append(n)
    return out


def code_kind(doc: Doc, code: bool = True) -> str | None:
    """function / method / class / module for code documentation passages (``code``: the corpus
    looks like code documentation, see ``looks_like_code``), else None."""
    t = doc.title.strip()
    if not code or doc.kind != "passage":
        return None
    if not t or " " in t or not re.fullmatch(r"[A-Za-z_][\w.]*", t):
        return None
    last = t.rsplit(".", 1)[-1]
    sig = SIGNATURE.match(doc.text)
    if sig:
        if last[:1].isupper():
            return "class"
        return "method" if t.count(".") >= 2 and t.split(".")[-2][:1].isupper() else "function"
    if t.islower() and ("." not in t or t.count(".") <= 1) and not doc.text.startswith(last + "("):
        return "module"
    return None


def looks_like_code(docs: Sequence[Doc]) -> bool:
    """A corpus is code documentation when a tenth of its passages open with a call signature."""
    sample = docs[:: max(1, len(docs) // 500)]
    return sum(bool(SIGNATURE.match(d.text)) for d in sample) >= 0.1 * max(1, len(sample))


def description(doc: Doc) -> tuple[str, list[str], str]:
    """(definition, example sentences, signature) of a passage: the gloss after ``lemmas:``, or the
    first sentence of the text after a code signature, with "<title> is" stripped."""
    text = doc.text.strip()
    examples: list[str] = []
    sig = ""
    head, sep, rest = text.partition(": ")  # "name, alias, alias: description…" (glosses, kira.kb.verbalize)
    names_head = bool(sep) and bool(doc.title) and doc.title.lower() in [x.strip().lower() for x in head.split(",")]
    if doc.kind == "kb_fact":  # "…: description. facts…"
        first = rest.split(". ", 1)[0] if names_head else ""
        return first.strip().rstrip("."), [], ""
    if names_head:
        text = rest
        body, _, ex = text.partition(". Examples: ")
        examples = [e.strip() for e in ex.split(";") if e.strip()]
        return body.strip().rstrip("."), examples, ""
    m = SIGNATURE.match(text)
    if m:
        sig, text = m.group(0).strip(), text[m.end():].strip()
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text, maxsplit=1)[0].strip().rstrip(".")
    if doc.title:
        first = re.sub(rf"^(?:the\s+)?{re.escape(doc.title)}\s+(?:is|are|was|were)\s+", "", first, flags=re.I)
    return first, examples, sig


def _tokens(s: str) -> list[str]:
    return s.split()


def head_split(desc: str) -> tuple[str, str, str]:
    """``(premodifiers, head noun, rest)`` of a noun-phrase gloss: the head is the last word before
    the first preposition, relative pronoun, comma, semicolon or parenthesis."""
    words = _tokens(desc)
    if words and words[0].lower() in ("a", "an", "the", "any", "one"):
        words = words[1:]
    cut = len(words)
    for i, w in enumerate(words):
        lw = w.lower().strip(",;()")
        if i > 0 and (lw in PREPS or lw in ("that", "which", "who", "whose", "where", "usually", "especially")
                      or w[-1:] in ",;" or w.startswith("(")):
            cut = i if w[-1:] not in ",;" else i + 1
            break
    np = [w.strip(",;") for w in words[:cut]]
    if not np:
        return "", "", desc
    return " ".join(np[:-1]), np[-1], " ".join(words[cut:]).strip(" ,;")


def gloss_kind(desc: str, doc: Doc) -> str:
    """noun | verb | adj | adv for a WordNet-style gloss (from the synset id when present)."""
    ent = str(doc.metadata.get("entity") or "")
    pos = str(doc.metadata.get("pos") or doc.metadata.get("synset", "")[:1]
              or (ent[:1] if re.fullmatch(r"[nvar]\.\d{8}", ent) else "")
              or (doc.id.split(".")[0] if doc.id[:2] in ("n.", "v.", "a.", "r.") else ""))
    if pos in ("v",):
        return "verb"
    if pos in ("a", "s"):
        return "adj"
    if pos == "r":
        return "adv"
    if pos == "n":
        return "noun"
    first = desc.split(" ", 1)[0].lower() if desc else ""
    if first in VERB_STARTS or (first.endswith("s") and first[:-1] in VERB_STARTS):
        return "verb"
    return "noun"


def _third_person(vp: str) -> str:
    """"return the gcd" -> "returns the gcd" (code docs are imperative)."""
    w, _, rest = vp.partition(" ")
    lw = w.lower()
    if lw.endswith("s") and lw[:-1] in VERB_STARTS:
        v = lw
    elif lw.endswith(("sh", "ch", "x", "ss")):
        v = lw + "es"
    elif lw.endswith("y") and lw[-2:-1] not in "aeiou":
        v = lw[:-1] + "ies"
    elif lw == "be":
        v = "is"
    elif lw == "have":
        v = "has"
    else:
        v = lw + "s"
    return f"{v} {rest}".strip()


def paraphrase(text: str, rng: random.Random, strength: float = 0.5) -> str:
    """Light rewording: a clause fragment, synonyms, dropped articles and parentheticals."""
    t = re.sub(r"\s*\([^)]*\)", "", text).strip()
    if ";" in t and rng.random() < 0.7:
        parts = [p.strip() for p in t.split(";") if p.strip()]
        t = parts[0] if rng.random() < 0.7 else rng.choice(parts)
    words = t.split()
    out = []
    for i, w in enumerate(words):
        lw = w.lower()
        if lw in ("a", "an", "the") and i > 0 and rng.random() < strength * 0.6:
            continue
        if lw in SYNONYMS and rng.random() < strength:
            w = SYNONYMS[lw] if w.islower() else SYNONYMS[lw].capitalize()
        out.append(w)
    if len(out) > 12 and rng.random() < strength:  # a fragment is often enough to identify it
        out = out[:rng.randint(8, len(out))]
        while out and out[-1].lower() in STOP:
            out.pop()
    return " ".join(out).strip(" ,;:")


def _q(s: str) -> str:
    s = re.sub(r"\s+", " ", s).strip().rstrip(".;, ")
    s = s.replace(" ?", "?")
    return (s[:1].upper() + s[1:]).rstrip("?") + "?"


def _short_name(doc: Doc) -> str:
    t = doc.title.strip()
    return t if " " in t else t


# ---- question families ---------------------------------------------------------------------------
def name_questions(doc: Doc, rng: random.Random, n: int, code: bool = False) -> list[QA]:
    """Description -> name: the answer is the passage's own subject."""
    names = subject_names(doc)
    desc, examples, sig = description(doc)
    if not names or len(desc.split()) < 2:
        return []
    kind = code_kind(doc, code)
    out: list[QA] = []
    if kind is not None:
        short = names[-1]
        module = doc.title.rsplit(".", 1)[0] if "." in doc.title else ""
        owner = module.rsplit(".", 1)[-1] if module else ""
        d = paraphrase(desc, rng, 0.4)
        dl = d[:1].lower() + d[1:]
        first = dl.split(" ", 1)[0]
        is_vp = first in VERB_STARTS or (first.endswith("s") and first[:-1] in VERB_STARTS)
        where = f" in {owner}" if owner and rng.random() < 0.6 else ""
        if kind == "module":
            pats = [f"Which module provides {dl}?", f"Which standard module is for {dl}?",
                    f"What module should I import for {dl}?", f"Which module deals with {dl}?"]
            answers = [doc.title]
        elif is_vp:
            vp3 = _third_person(dl)
            kw = kind if kind != "class" else "class"
            pats = [f"Which {kw}{where} {vp3}?", f"What {kw} should I use to {dl}?",
                    f"Which {owner + ' ' if owner else ''}{kw} {vp3}?", f"How do I {dl}{where}?",
                    f"What is the name of the {kw} that {vp3}?", f"Which callable {vp3}?"]
            answers = [short, doc.title]
        else:
            pats = [f"Which {kind}{where} is {dl}?", f"What {kind} represents {dl}?",
                    f"What is the {kind}{where} for {dl}?", f"Which {kind} implements {dl}?"]
            answers = [short, doc.title]
        rng.shuffle(pats)
        for p in pats[:n]:
            out.append(QA(_q(p), answers, "name", "which", kind))
        return out
    gk = gloss_kind(desc, doc)
    pre, head, rest = head_split(desc) if gk == "noun" else ("", "", "")
    life = LIFE.search(desc)
    is_person = head.lower() in PERSON_HEADS or bool(life) or (head.lower().endswith(("ist", "ian")) and pre[:1].isupper())
    is_place = head.lower() in PLACE_HEADS
    d = paraphrase(LIFE.sub("", desc).strip(), rng)
    pats: list[tuple[str, str, str]] = []  # (question, wh, answer type)
    if gk == "noun":
        atype = "person" if is_person else ("place" if is_place else "thing")
        wh = "who" if is_person else "what"
        pats += [(f"What is the word for {d}?", "what", atype), (f"What do you call {d}?", "what", atype),
                 (f"What is the name for {d}?", "what", atype), (f"What term means {d}?", "what", atype),
                 (f"{d} is called what?", "what", atype), (f"What is {d}?", wh, atype)]
        if is_person:
            pats.append((f"Who was {d}?", "who", "person"))
        r = rest
        rel = RELATIVE.match(r)
        hd = paraphrase(head, rng, 0.3) if head else ""
        if rel and head:
            vp = r[rel.end():].strip()
            vp = paraphrase(LIFE.sub("", vp).strip(), rng)
            if vp:
                if is_person:
                    pats.append((f"Who {vp}?", "who", "person"))
                pats.append((f"Which {(pre + ' ') if pre and rng.random() < 0.4 else ''}{hd} {vp}?", "which", atype))
                pats.append((f"What {hd} {vp}?", "which", atype))
        elif r and head and r.split(" ", 1)[0].lower() in PREPS:
            rr = paraphrase(LIFE.sub("", r).strip(), rng)
            if " and " in pre:
                pre2 = pre.split(" and ")[0]
                pats.append((f"What is the {pre2} {rr}?", "what", atype))
            pats.append((f"Which {hd} is {rr}?", "which", atype))
            if pre:
                pats.append((f"Which {pre} {hd} is {rr}?", "which", atype))
            if is_place:
                pats.append((f"Which {hd} lies {rr}?", "which", "place"))
        elif head and pre:
            pats.append((f"Which {hd} is {pre}?", "which", atype))
        for ex in examples[:2]:
            low = ex.lower()
            hit = next((nm for nm in names if re.search(rf"(?<!\w){re.escape(nm.lower())}(?!\w)", low)), None)
            if hit:
                m = re.search(rf"(?<!\w){re.escape(hit)}(?!\w)", ex, flags=re.I)
                cloze = ex[:m.start()] + "what" + ex[m.end():]
                pats.append((f"Which word fits: {cloze}?", "what", "word"))
    elif gk == "verb":
        pats += [(f"What is the verb for to {d}?", "what", "verb"), (f"Which verb means to {d}?", "what", "verb"),
                 (f"What word means to {d}?", "what", "verb"), (f"What do you call it when you {d}?", "what", "verb")]
    elif gk == "adj":
        pats += [(f"Which adjective means {d}?", "what", "adjective"),
                 (f"What word describes something {d}?", "what", "adjective"),
                 (f"What is the adjective for {d}?", "what", "adjective")]
    else:
        pats += [(f"Which adverb means {d}?", "what", "adverb"), (f"What word means {d}?", "what", "adverb")]
    rng.shuffle(pats)
    for q, wh, at in pats[:n]:
        out.append(QA(_q(q), list(names), "name", wh, at))
    return out


def _in_text(ans: str, text: str) -> bool:
    return bool(re.search(r"(?<!\w)" + re.escape(ans) + r"(?!\w)", text, flags=re.I))


def span_questions(doc: Doc, rng: random.Random, n: int, code: bool = False,
                   ambiguous: frozenset[str] = frozenset(), types: dict[str, str] | None = None,
                   exclude_relations: frozenset[str] = frozenset()) -> list[QA]:
    """Spans of the passage (numbers, dates, entities, code facts, KB relation objects) as answers."""
    names = subject_names(doc)
    subj = names[0] if names else doc.title
    kind = code_kind(doc, code)
    if names and kind in ("function", "method", "class"):
        subj = names[-1]
    desc, _, sig = description(doc)
    text = doc.text
    out: list[QA] = []
    m = LIFE.search(text)
    if m and subj:
        for q in (f"When was {subj} born?", f"In what year was {subj} born?", f"What year was {subj} born in?"):
            out.append(QA(q, [m.group(1)], "date", "when", "year"))
        for q in (f"When did {subj} die?", f"In which year did {subj} die?"):
            out.append(QA(q, [m.group(2)], "date", "when", "year"))
    for nm in NUMBER.finditer(desc):
        num, unit = nm.group(1), (nm.group(2) or "")
        if LIFE.search(desc) and num in LIFE.search(desc).groups():
            continue
        if unit.lower() in UNITS:
            after = desc[nm.end():].split(";")[0].split(",")[0].strip()
            after = " ".join(after.split()[:3])
            out.append(QA(_q(f"How many {unit} {after} is {subj}"), [num], "number", "how many", "number"))
            out.append(QA(_q(f"{subj}: how many {unit} {after}"), [num, f"{num} {unit}"], "number", "how many", "number"))
        elif re.fullmatch(r"1\d{3}|20\d{2}", num):
            cl = desc[:nm.start()] + "what year" + desc[nm.end():]
            out.append(QA(_q(f"In what year: {subj}, {cl}"), [num], "date", "when", "year"))
        else:
            cl = desc[:nm.start()] + "how many" + desc[nm.end():]
            out.append(QA(_q(f"{subj} is {cl}"), [num], "number", "how many", "number"))
    if doc.kind == "kb_fact" and doc.title.lower() not in ambiguous:
        out += kb_relation_questions(doc, rng, n=max(1, n - 1), types=types, exclude=exclude_relations)
    if kind in ("function", "method", "class"):
        out += code_questions(doc, subj, sig, rng)
    # named entities in the description (places, people, groups): "Where is X?" / cloze
    for cm in CAPS.finditer(desc):
        ent = cm.group(0).strip()
        if cm.start() == 0 or any(ent.lower() == x.lower() for x in names) or len(ent) < 3:
            continue
        before = desc[:cm.start()].rstrip().split(" ")[-1].lower() if desc[:cm.start()].strip() else ""
        if before in ("in", "on", "near", "at"):
            out.append(QA(_q(f"Where is {subj}"), [ent], "entity", "where", "place"))
            kind_of = (types or {}).get(ent.lower(), "place")
            out.append(QA(_q(rng.choice([f"{subj} is located {before} which {kind_of}",
                                         f"Which {kind_of} is {subj} {before}"])), [ent], "entity", "which", kind_of))
        elif before == "of":
            out.append(QA(_q(f"{subj} is {desc[:cm.start()].strip()} what"), [ent], "entity", "what", "entity"))
        else:
            cl = desc[:cm.start()] + "what" + desc[cm.end():]
            out.append(QA(_q(f"{subj}: {cl}"), [ent], "entity", "what", "entity"))
    rng.shuffle(out)
    # numbers, dates and relation objects are rarer than capitalised words: ask about them first
    out.sort(key=lambda qa: qa.qtype == "entity")
    seen: set[str] = set()
    res = []
    for qa in out:
        key = norm(qa.answers[0])
        if key in seen or not qa.answers[0].strip():
            continue
        seen.add(key)
        res.append(qa)
        if len(res) >= n:
            break
    return res


# how often a relation is asked about, relative to 1: people rarely ask for a derivational form
RELATION_WEIGHT = {"derivationally related form": 0.15, "similar to": 0.4, "also see": 0.2, "verb group": 0.2,
                   "domain of synset usage": 0.3, "hyponym": 0.5, "instance hyponym": 0.5, "pertainym": 0.5}


def passage_facts(doc: Doc) -> dict[str, list[str]]:
    """``relation -> objects`` of the passage's own subject: from the ``facts`` the verbalizer
    records in the passage metadata, else parsed from the ``subject, relation: object, …`` line."""
    by_rel: dict[str, list[str]] = defaultdict(list)
    facts = doc.metadata.get("facts") if doc.metadata else None
    if facts:
        for subj, rel, obj in facts:
            if subj == doc.title and obj and obj.lower() != subj.lower():
                by_rel[rel].append(obj)
        return by_rel
    m = re.search(r"(?:^|\. )" + re.escape(doc.title) + r", ([a-z][a-z ]*: .+?)\.(?: [A-Z]|$)", doc.text)
    if m:
        for item in re.split(r", (?=[a-z][a-z ]*: )", m.group(1)):
            rel, sep, obj = item.partition(": ")
            if sep and obj.strip() and obj.strip().lower() != doc.title.lower():
                by_rel[rel.strip()].append(obj.strip())
    return by_rel


def subject_phrase(subj: str, doc: Doc, rng: random.Random) -> str:
    """"dog" -> "a dog" or "the dog" some of the time: people put articles before common nouns."""
    if not subj[:1].islower() or gloss_kind("", doc) != "noun":
        return subj
    r = rng.random()
    if r < 0.4:
        return ("an " if subj[0] in "aeiou" else "a ") + subj
    return "the " + subj if r < 0.55 else subj


def kb_relation_questions(doc: Doc, rng: random.Random, n: int = 2, types: dict[str, str] | None = None,
                          exclude: frozenset[str] = frozenset()) -> list[QA]:
    """Questions about the objects of the passage subject's KB relations, several phrasings per
    relation (``kira.reader.questions.DEFAULT_TEMPLATES``), half of them typed when the objects'
    class is known (``TYPED_TEMPLATES``: "Which organ contains the retina?"); a relation with more
    than three objects has no single answer a person would expect, so it is not asked."""
    from kira.reader.questions import DEFAULT_TEMPLATES, GENERIC, TYPED_TEMPLATES

    rels = [(r, objs) for r, objs in sorted(passage_facts(doc).items()) if 0 < len(objs) <= 3 and r not in exclude]
    out = []
    while rels and len(out) < n:
        weights = [RELATION_WEIGHT.get(r, 1.0) for r, _ in rels]
        i = rng.choices(range(len(rels)), weights=weights)[0]
        rel, objs = rels.pop(i)
        pats = DEFAULT_TEMPLATES.get(rel) or GENERIC
        kinds = {(types or {}).get(o.lower()) for o in objs}
        subject = subject_phrase(doc.title, doc, rng)
        if rel in TYPED_TEMPLATES and len(kinds) == 1 and None not in kinds and rng.random() < 0.5:
            typed = TYPED_TEMPLATES[rel]
            q, wh = typed[rng.randrange(len(typed))].format(subject=subject, type=kinds.pop()), "which"
        else:
            q, wh = pats[rng.randrange(len(pats))].format(subject=subject, relation=rel), "what"
        out.append(QA(_q(q), list(dict.fromkeys(objs)), "relation", wh, rel))
    return out


def code_questions(doc: Doc, name: str, sig: str, rng: random.Random) -> list[QA]:
    """Exceptions, default values, parameters and return values of documented code."""
    out: list[QA] = []
    text = doc.text
    call = f"{name}()" if rng.random() < 0.5 else name
    for sent in re.split(r"(?<=[.!?])\s+", text):
        em = EXCEPTION.search(sent)
        if em:
            cond = re.search(r"\b(if|when|unless|on)\b(.+)$", sent)
            c = f" {cond.group(1)}{cond.group(2)}" if cond and em.group(1) not in cond.group(0) else ""
            c = paraphrase(c.strip(), rng, 0.3) if c else ""
            for p in (f"Which exception does {call} raise{(' ' + c) if c else ''}",
                      f"What error is raised by {call}{(' ' + c) if c else ''}"):
                out.append(QA(_q(p), [em.group(1)], "exception", "which", "exception"))
        rm = re.match(r"(?:Return|Returns)\s+(.+?)(?:[,;.]| if | for | of | when | with |$)", sent)
        if rm and 1 <= len(rm.group(1).split()) <= 5:
            ans = rm.group(1).strip()
            for p in (f"What does {call} return", f"What is returned by {call}"):
                out.append(QA(_q(p), [ans], "return", "what", "value"))
    m = SIGNATURE.match(text)
    if m:
        for pm in re.finditer(r"(\w+)\s*=\s*([^,()]+(?:\([^()]*\))?)", m.group(2)):
            param, default = pm.group(1), pm.group(2).strip()
            if not default or len(default) > 30:
                continue
            for p in (f"What is the default value of {param} in {call}", f"What does the {param} argument of {name} "
                      "default to", f"By default, what is {param} for {call}"):
                out.append(QA(_q(p), [default], "default", "what", "value"))
        params = [p.strip().split("=")[0].strip(" *") for p in m.group(2).split(",")]
        body = text[m.end():]
        for param in params:
            if len(param) < 2 or param in ("self", "cls", "/", "args", "kwargs"):
                continue
            for sent in re.split(r"(?<=[.!?])\s+", body):
                pm2 = re.search(rf"(?<![\w.]){re.escape(param)}(?![\w(])", sent)
                if pm2 and len(sent.split()) >= 4:
                    cl = sent[:pm2.start()] + "which parameter" + sent[pm2.end():]
                    out.append(QA(_q(f"Which parameter of {call} {_rest_after(cl)}"), [param], "parameter",
                                  "which", "parameter"))
                    out.append(QA(_q(f"In {call}, {cl}"), [param], "parameter", "which", "parameter"))
                    break
    return out


def _rest_after(cl: str) -> str:
    i = cl.find("which parameter")
    rest = (cl[:i] + cl[i + len("which parameter"):]).strip()
    return f"is used in: {paraphrase(rest, random.Random(len(rest)), 0.2)}"


# ---- corpus-level generation ---------------------------------------------------------------------
def _keep(qa: QA, doc: Doc) -> QA | None:
    """Answers must occur in the passage (title included); the question must not contain them."""
    hay = f"{doc.title} {doc.text}"
    answers = [a for a in qa.answers if a.strip() and _in_text(a, hay)]
    if not answers:
        return None
    qn = f" {norm(qa.question)} "
    if any(norm(a) and f" {norm(a)} " in qn for a in answers):
        return None
    if len(qa.question) > 300:
        return None
    qa.answers = answers
    return qa


class NegativeIndex:
    """Passages by their rarer words, to pick hard negatives (share words, not the answer)."""

    def __init__(self, docs: Sequence[Doc], per_word: int = 64, seed: int = 0):
        df: dict[str, int] = defaultdict(int)
        post: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(docs):
            for w in set(x.lower() for x in _WORD.findall(f"{d.title} {d.text[:400]}")):
                if w in STOP:
                    continue
                df[w] += 1
                lst = post[w]
                if len(lst) < per_word:
                    lst.append(i)
                elif _h(seed, w, i) % df[w] < per_word:  # reservoir-ish, deterministic
                    lst[_h(seed, i, w) % per_word] = i
        self.docs, self.df, self.post = docs, df, post

    def negatives(self, question: str, answers: Sequence[str], own: int, n: int, rng: random.Random) -> list[int]:
        words = sorted({w.lower() for w in _WORD.findall(question) if w.lower() not in STOP and w.lower() in self.df},
                       key=lambda w: (self.df[w], w))
        out: list[int] = []
        for w in words[:6]:
            cands = [i for i in self.post[w] if i != own and i not in out]
            rng.shuffle(cands)
            for i in cands[:4]:
                d = self.docs[i]
                if not any(_in_text(a, f"{d.title} {d.text}") for a in answers):
                    out.append(i)
                    break
            if len(out) >= n:
                break
        while len(out) < n and len(self.docs) > n + 1:
            i = rng.randrange(len(self.docs))
            if i != own and i not in out:
                out.append(i)
        return out[:n]


def entity_types(docs: Sequence[Doc], code: bool = False) -> dict[str, str]:
    """Lower-cased entity name -> the head noun of its class, to type wh-phrases ("Which river is
    Baghdad on?"): a KB passage's type relation (hypernym, instance of, …) or, for plain text, the
    head noun of its definition ("Tigris: a river in Turkey and Iraq" -> "river")."""
    from kira.kb.answer_types import TYPE_RELATIONS
    from kira.reader.questions import type_word

    out: dict[str, str] = {}
    for d in docs:
        if code_kind(d, code) is not None:
            continue
        if d.kind == "kb_fact":
            facts = passage_facts(d)
            cls = next((facts[r][0] for r in TYPE_RELATIONS if facts.get(r)), None)
            word = type_word(cls) if cls else None
        else:
            desc = description(d)[0]
            word = type_word(head_split(desc)[1]) if desc and gloss_kind(desc, d) == "noun" else None
        if word:
            for name in subject_names(d):
                out.setdefault(name.lower(), word)
    return out


def generate(docs: Sequence[Doc], per_passage: int = 4, name_share: float = 0.5, heldout: float = 0.1,
             negatives: int = 2, seed: int = 0, limit: int | None = None,
             max_relation_share: float = 0.25) -> list[dict[str, Any]]:
    """Questions about ``docs`` (see module doc); ``per_passage`` questions at most per passage,
    ``name_share`` of them description -> name. No KB relation takes more than
    ``max_relation_share`` of the relation questions (every WordNet noun has a hypernym: unchecked,
    "a kind of what?" would be most of them and the reader would learn to answer the hypernym
    whatever the relation asked). Deterministic for a given seed and corpus."""
    neg_index = NegativeIndex(docs, seed=seed) if negatives else None
    code = looks_like_code(docs)
    counts: dict[str, int] = defaultdict(int)
    for d in docs:
        counts[d.title.lower()] += d.kind == "kb_fact"
    ambiguous = frozenset(t for t, c in counts.items() if c > 1)  # "bank": the question can't say which
    types = entity_types(docs, code)
    out: list[dict[str, Any]] = []
    by_relation: dict[str, int] = defaultdict(int)
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    for i in order:
        d = docs[i]
        rng = random.Random(_h(seed, d.id))
        # name questions per passage: ``per_passage * name_share`` on average, drawn per passage, so
        # one question per passage (large corpora) still mixes names with relations and spans
        share = per_passage * name_share
        frac = share - int(share)
        n_name = int(share) + (frac > 0 and rng.random() < frac)  # no draw when whole: same stream as before
        if d.title.lower() in ambiguous and d.kind == "kb_fact":
            continue
        qas = (name_questions(d, rng, n_name, code)
               + span_questions(d, rng, max(1, per_passage - n_name), code, ambiguous, types,
                                full_relations(by_relation, max_relation_share)))
        kept = [k for k in (_keep(q, d) for q in qas) if k is not None][:per_passage]
        held_passage = heldout_of(d.title or d.id, heldout, seed)
        for qa in kept:
            if qa.qtype == "relation":
                by_relation[qa.answer_type] += 1
            held = held_passage or heldout_of(qa.answers[0], heldout, seed)
            rec: dict[str, Any] = {
                "question": qa.question, "answers": qa.answers, "qtype": qa.qtype, "wh": qa.wh,
                "answer_type": qa.answer_type, "passage_id": d.id, "title": d.title, "text": d.text,
                "source": d.source, "split": "heldout" if held else "train", "synthetic": True,
                "generator": GENERATOR_VERSION}
            if neg_index is not None:
                rec["negatives"] = [{"id": docs[j].id, "title": docs[j].title, "text": docs[j].text}
                                    for j in neg_index.negatives(qa.question, qa.answers, i, negatives, rng)]
            out.append(rec)
        if limit and len(out) >= limit:
            break
    # clean split: no held-out passage is trained on, no held-out answer is a training answer
    held_pass = {r["passage_id"] for r in out if r["split"] == "heldout"}
    out = [r for r in out if r["split"] == "heldout" or r["passage_id"] not in held_pass]
    train_ans = {norm(a) for r in out if r["split"] == "train" for a in r["answers"]}
    return [r for r in out if r["split"] == "train" or not any(norm(a) in train_ans for a in r["answers"])]


def decontaminate(records: Sequence[dict[str, Any]], questions: Iterable[str]) -> tuple[list[dict[str, Any]], int]:
    """``records`` without those asking one of ``questions`` (equal up to case, punctuation and
    articles: SQuAD answer normalisation), and how many were dropped. For a fixed list of questions
    shown as examples (the demo's), never for a dev set: filtering training data by a dev set is
    tuning on it."""
    banned = {norm(q) for q in questions}
    kept = [r for r in records if norm(r["question"]) not in banned]
    return kept, len(records) - len(kept)


def training_overlap(questions: Iterable[str], paths: Iterable[str | Path]) -> dict[str, list[str]]:
    """For each of ``questions``, the question files among ``paths`` (jsonl records with a
    ``question``) that ask it, up to case, punctuation and articles: {} when none is trained on."""
    from kira.jsonl import iter_jsonl

    want = {norm(q): q for q in questions}
    found: dict[str, list[str]] = {}
    for path in paths:
        for _, rec in iter_jsonl(path):
            q = want.get(norm(str(rec.get("question", ""))))
            if q is not None and str(path) not in found.get(q, []):
                found.setdefault(q, []).append(str(path))
    return found


def contexts_of(rec: dict[str, Any]) -> list[dict[str, str]]:
    """The record's passages for ``kira reader train``: its own passage first, then its negatives."""
    return [{"id": rec["passage_id"], "title": rec["title"], "text": rec["text"]}, *rec.get("negatives", [])]


# ---- corpora ---------------------------------------------------------------------------------------
def docs_from_store(store, sources: Iterable[str] | None = None, max_docs: int | None = None,
                    seed: int = 0) -> list[Doc]:
    """Every passage of the store (all sources, or ``sources``): text, KB facts, table rows."""
    docs: list[Doc] = []
    for src in (list(sources) if sources else [None]):
        for batch in store.iter_passages(src):
            for p in batch:
                meta = p.metadata or {}
                kind = meta.get("kind") if meta.get("kind") in ("kb_fact", "table") else "passage"
                docs.append(Doc(p.id, p.title or "", p.text or "", p.source, kind, meta))
    if max_docs and len(docs) > max_docs:
        docs = random.Random(seed).sample(docs, max_docs)
        docs.sort(key=lambda d: d.id)
    return docs


def docs_from_jsonl(path: str, max_docs: int | None = None, seed: int = 0) -> list[Doc]:
    from kira.jsonl import iter_jsonl

    docs = [Doc(str(r.get("id", ln)), r.get("title", "") or "", r.get("text", "") or "", str(path))
            for ln, r in iter_jsonl(path) if r.get("text")]
    if max_docs and len(docs) > max_docs:
        docs = sorted(random.Random(seed).sample(docs, max_docs), key=lambda d: d.id)
    return docs


def docs_from_wordnet(path: str = "/usr/share/wordnet", max_docs: int | None = None, seed: int = 0) -> list[Doc]:
    """WordNet passages exactly as ``kira kb add wordnet`` writes them into the index (one passage
    per synset: every lemma, the gloss, its facts named and verbalized), so the reader pretrains on
    the text it will read at ask time."""
    from kira.kb.plugin import collect, default_templates
    from kira.kb.registry import make_source
    from kira.kb.verbalize import verbalize_kb

    kb = collect(make_source("wordnet", "wordnet", [path]), "wordnet")
    docs = [Doc(p.id, p.title or "", p.text, "wordnet", "kb_fact", dict(p.metadata or {}))
            for p in verbalize_kb("wordnet", kb.entities, kb.relations, kb.triples, default_templates("wordnet"))]
    if max_docs and len(docs) > max_docs:
        docs = sorted(random.Random(seed).sample(docs, max_docs), key=lambda d: d.id)
    return docs


def iter_records_stats(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from collections import Counter

    return {"n": len(records), "heldout": sum(r["split"] == "heldout" for r in records),
            "qtype": dict(Counter(r["qtype"] for r in records)), "wh": dict(Counter(r["wh"] for r in records))}


def sample_questions(records: Sequence[dict[str, Any]], k: int = 10, seed: int = 0) -> Iterator[str]:
    for r in random.Random(seed).sample(list(records), min(k, len(records))):
        yield f"{r['question']}  ->  {r['answers'][0]}  [{r['qtype']}/{r['wh']}] ({r['title']})"
