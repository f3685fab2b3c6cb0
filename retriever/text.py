"""SQuAD answer normalisation, in one place: retrieval top-k accuracy and readers' EM/F1 share it.

DPR counts a retrieved passage as a hit when a normalised answer string occurs in the normalised
passage text; SQuAD's EM/F1 compare normalised strings. Both must normalise identically or the
retrieval and QA numbers stop being comparable.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation, drop the articles a/an/the, collapse whitespace (SQuAD v1.1)."""
    s = s.lower().translate(_PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def has_answer(answers: Iterable[str], text: str, normalized_text: str | None = None) -> bool:
    """Whether any normalised answer occurs as a whole-token sequence in the normalised text.

    Matching on token boundaries (``" 1 "`` not inside ``" 1990 "``) follows DPR's tokenised match.
    Pass ``normalized_text`` when testing many answer lists against one passage.
    """
    hay = " " + (normalized_text if normalized_text is not None else normalize_answer(text)) + " "
    for a in answers:
        na = normalize_answer(a)
        if na and f" {na} " in hay:
            return True
    return False


def exact_match(prediction: str, answers: Iterable[str]) -> bool:
    """SQuAD exact match against any gold answer."""
    p = normalize_answer(prediction)
    return any(p == normalize_answer(a) for a in answers)


def f1_score(prediction: str, answers: Iterable[str]) -> float:
    """SQuAD token F1, max over gold answers."""
    from collections import Counter

    pred = normalize_answer(prediction).split()
    best = 0.0
    for a in answers:
        gold = normalize_answer(a).split()
        if not pred or not gold:
            best = max(best, float(pred == gold))
            continue
        common = sum((Counter(pred) & Counter(gold)).values())
        if common:
            prec, rec = common / len(pred), common / len(gold)
            best = max(best, 2 * prec * rec / (prec + rec))
    return best
