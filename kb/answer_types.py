"""Answer-type agreement from a knowledge base's class hierarchy.

"In which city is the Taj Mahal?" asks for a city; a reader that answers "mausoleum" has read the
right passage and picked a span of the wrong type. Open-domain QA systems check the answer's type
against the question's (type coercion, as in IBM Watson's TyCor): here the question's type is the
noun of its wh-phrase ("which city", "what kind of bird", "who" -> person), and a candidate answer
agrees when one of the KB entities it names has that class among its ancestors over the KB's type
relations (WordNet's hypernym and instance hypernym; ``isa``, ``instance of``, ``subclass of`` …
in other KBs). A candidate the KB does not know, or a question type the KB has no class for, is
left alone: the check only ever speaks from knowledge it has. Any KB with type relations plugs in;
nothing here is WordNet-specific.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable

# relations whose tail is a class of the head (what "is a" means across KBs)
TYPE_RELATIONS = ("hypernym", "instance hypernym", "isa", "is_a", "is a", "instance of", "subclass of", "type")

# A candidate one of whose KB senses has the asked class among its ancestors is weighed up by
# TYPE_AGREE; one whose senses all lie elsewhere keeps TYPE_MISMATCH of its score. Chosen on the blind
# natural *validation* set (bench/data/natural-val-wordnet.jsonl, shipped reader, k=10): agree x10
# took EM 0.686 -> 0.736 (+18 / -2 questions); any penalty on mismatches lost more than it won
# (x0.2: +5 / -6), because type words are polysemous ("place", "field", "member") and a KB often
# lacks the class path a passage means, so a mismatch says little. With spans trimmed to their typed
# part (``agreeing_part``), x20 over x10 gained +10 / -2 questions summed over six readers' cached
# outputs (none lost net; x30 and x50 lost net on one reader).
TYPE_AGREE = 20.0
TYPE_MISMATCH = 1.0

_WH = re.compile(r"\b(?:which|what)\s+(?:(?:kinds?|types?|sorts?|class(?:es)?|variet(?:y|ies))\s+of\s+)?"
                 r"(?:an?\s+|the\s+)?([a-z][a-z-]*)(?:\s+([a-z][a-z-]*))?", re.IGNORECASE)
_WHO = re.compile(r"^\s*(?:who|whom)\b", re.IGNORECASE)
# "What is the largest planet?", "Which was the most populous city …": the class follows "the" and
# any superlative
_WH_BE_THE = re.compile(r"^\s*(?:what|which)\s+(?:is|are|was|were)\s+the\s+([a-z][a-z\s-]*)", re.IGNORECASE)
# words after which/what that name no class of the answer: verbs, determiners, and meta words
# ("what is the word for …": the answer is a name, not an instance of "word")
_NOT_A_TYPE = frozenset([
    "is", "are", "was", "were", "be", "been", "do", "does", "did", "can", "could", "will", "would", "should",
    "shall", "may", "might", "must", "has", "have", "had", "the", "a", "an", "of", "in", "on", "at", "to",
    "for", "from", "by", "with", "about", "it", "its", "this", "that", "these", "those", "there", "here", "he",
    "she", "they", "you", "we", "i", "one", "ones", "else", "if", "so", "kind", "kinds", "type", "types",
    "sort", "sorts", "word", "words", "term", "terms", "name", "names", "called", "call", "thing", "things",
    "something", "someone", "somebody", "adjective", "adjectives", "adverb", "adverbs", "noun", "nouns", "verb",
    "verbs", "phrase", "expression", "synonym", "synonyms", "antonym", "antonyms", "opposite", "opposites",
    "part", "parts", "number", "numbers", "year", "years"
])

# words of a class so general that a span trimmed to them answers nothing ("a member of …", "genus")
_TOO_GENERIC = frozenset([
    "member", "members", "category", "class", "group", "genus", "family", "order", "species", "form", "variety",
    "unit", "object", "entity", "whole", "body", "system", "organism", "substance", "matter", "person", "people"
])


def _singular(w: str) -> list[str]:
    """The word and its crude singulars ("cities" -> "city", "countries" -> "country")."""
    out = [w]
    if w.endswith("ies") and len(w) > 4:
        out.append(w[:-3] + "y")
    if w.endswith("es") and len(w) > 4:
        out.append(w[:-2])
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        out.append(w[:-1])
    return out


def _key(text: str) -> str:
    t = " ".join(re.sub(r"[^\w\s'-]", " ", text.lower()).split())
    return re.sub(r"^(?:the|a|an)\s+", "", t)


class AnswerTypes:
    """Names and type ancestors of one or more KBs' entities; ``factor(question, answer)``."""

    def __init__(self, names: dict[str, list[int]], parents: list[list[int]]):
        self._names = names  # lower-cased name or alias -> entity indices
        self._parents = parents  # entity index -> its classes (type relations' tails)
        self._classes = frozenset(j for ps in parents for j in ps)  # entities something is an instance of
        self._ancestors: dict[int, frozenset[int]] = {}
        self._cache: dict[tuple[str, str], float] = {}

    @classmethod
    def from_triples(cls, entities: Iterable[tuple[str, str, list[str]]],
                     type_edges: Iterable[tuple[str, str]]) -> AnswerTypes:
        """``entities``: (id, name, aliases); ``type_edges``: (entity id, class id)."""
        index: dict[str, int] = {}
        names: dict[str, list[int]] = defaultdict(list)
        for eid, name, aliases in entities:
            i = index.setdefault(eid, len(index))
            for n in {_key(x) for x in [name, *(aliases or [])] if x}:
                if n:
                    names[n].append(i)
        parents: list[list[int]] = [[] for _ in index]
        for head, tail in type_edges:
            h, t = index.get(head), index.get(tail)
            if h is not None and t is not None and h != t:
                parents[h].append(t)
        return cls(dict(names), parents)

    @classmethod
    def from_store(cls, store, kbs: Iterable[str] | None = None) -> AnswerTypes | None:
        """From the store's KBs (all, or ``kbs``) that have type relations; None when none has."""
        entities: list[tuple[str, str, list[str]]] = []
        edges: list[tuple[str, str]] = []
        for kb in (list(kbs) if kbs is not None else store.list_kbs()):
            rel_ids = {r.id for r in store.list_relations(kb) if r.name.lower() in TYPE_RELATIONS
                       or r.id.lower() in TYPE_RELATIONS}
            if not rel_ids:
                continue
            entities += [(f"{kb}\t{e.id}", e.name, list(e.aliases or [])) for e in store.iter_entities(kb)]
            edges += [(f"{kb}\t{t.head}", f"{kb}\t{t.tail}") for t in store.iter_triples(kb)
                      if t.relation in rel_ids]
        return cls.from_triples(entities, edges) if edges else None

    # ---- lookups ------------------------------------------------------------------------------
    def ancestors(self, i: int) -> frozenset[int]:
        """Every class above entity ``i`` (not ``i`` itself), over all its type edges."""
        got = self._ancestors.get(i)
        if got is not None:
            return got
        seen: set[int] = set()
        stack = list(self._parents[i])
        while stack:
            j = stack.pop()
            if j in seen:
                continue
            seen.add(j)
            done = self._ancestors.get(j)
            if done is not None:
                seen |= done
            else:
                stack.extend(self._parents[j])
        got = self._ancestors[i] = frozenset(seen)
        return got

    def question_type(self, question: str) -> list[int] | None:
        """The KB classes the question asks for ("Which river …" -> the entities named "river"), or
        None when its wh-phrase names no class the KB has."""
        if _WHO.match(question):
            return self._names.get("person") or None
        m = _WH.search(question)
        if not m:
            return None
        w1, w2 = (m.group(1) or "").lower(), (m.group(2) or "").lower()
        be_the = _WH_BE_THE.match(question)
        if be_the:
            w1, w2 = self._after_superlative(be_the.group(1).lower().split())
        if w1 in _NOT_A_TYPE:
            return None
        if w2:
            for s in _singular(w2):
                got = self._names.get(f"{w1} {s}")
                if got:  # "which body part", "what chemical element"
                    return got
        for s in _singular(w1):
            classes = [i for i in self._names.get(s, []) if i in self._classes]
            if classes:
                return classes
        return None

    def _after_superlative(self, words: list[str]) -> tuple[str, str]:
        """The first two words after a leading superlative ("largest", "most populous"), or the
        first two when there is none; a word ending in -est that names a KB class ("forest") stays."""
        i = 0
        if words and words[0] in ("most", "least"):
            i = 2
        elif words and words[0].endswith("est") and len(words) > 1 and not any(
                j in self._classes for s in _singular(words[0]) for j in self._names.get(s, [])):
            i = 1
        rest = words[i:i + 2]
        return (rest[0] if rest else "", rest[1] if len(rest) > 1 else "")

    def agreeing_part(self, question: str, answer: str, max_words: int = 4) -> tuple[int, int] | None:
        """Character offsets of the longest run of words in ``answer`` (at most ``max_words``) that
        names a KB entity of the class the question asks for (not the class itself), when the whole
        answer names no KB entity ("Which country …?" -> "Pacific coast of southern Mexico" ->
        "Mexico"); else None."""
        want = self.question_type(question)
        if not want or _key(answer) in self._names:  # a name the KB knows is kept whole
            return None
        wanted = set(want)
        words = [(m.start(), m.end()) for m in re.finditer(r"[\w'-]+", answer)]
        for n in range(min(max_words, len(words) - 1), 0, -1):
            for i in range(len(words) - n + 1):
                start, end = words[i][0], words[i + n - 1][1]
                key = _key(answer[start:end])
                if key in _TOO_GENERIC or key in _NOT_A_TYPE:
                    continue
                senses = self._names.get(key, [])
                if any(j not in wanted and wanted & self.ancestors(j) for j in senses):
                    return start, end
        return None

    def factor(self, question: str, answer: str) -> float:
        """1 when the answer may be of the type the question asks for (or either is unknown to the
        KB), ``TYPE_MISMATCH`` when every KB entity the answer names is of another type."""
        key = (question, answer)
        got = self._cache.get(key)
        if got is not None:
            return got
        got = 1.0
        senses = self._names.get(_key(answer))
        if senses:
            want = self.question_type(question)
            if want:
                wanted = set(want)
                if any(wanted & self.ancestors(i) for i in senses):
                    got = TYPE_AGREE
                elif not wanted & set(senses):
                    got = TYPE_MISMATCH
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = got
        return got
