"""A table's schema as the semantic parser sees it, and value linking of a question to the WHOLE table.

WHY: a parser can only write ``WHERE weather = 'snow'`` if the filter names a real cell. Value linking
finds the question's n-grams that match cell values of the whole table (exact, normalised, prefix or
fuzzy) and the numbers, years, dates and yes/no attributes it mentions, so every candidate condition
value is either a real cell or a parsed number/date: the model only chooses among them.

``TableSchema.from_frame`` types each column (text / number / date / bool), keeps a SQL-safe identifier
for it (``c0``, ``c1``, … -- never the user's header), and adds hidden *shadow* columns for text
columns that hold numbers (``"$1,200"``) or dates (``"Mar 1 2010"``), so comparisons and MIN/MAX
work on them without any user text in SQL. Duplicate, empty or odd headers are fine: headers are
only shown to the model, never put into SQL.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pandas as pd

from kira.tables.lexicon import (
    ABBREV,
    SIGNALS,
    SUPERLATIVES,
    SUPERLATIVES_DOWN,
    SUPERLATIVES_UP,
    adjectives_for,
    header_text,
    header_words,
)
from kira.tables.values import cell_text, parse_number

KINDS = ("text", "number", "date", "bool")
STOPWORDS = frozenset(["a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "and", "or", "is", "are", "was", "were", "be", "been", "what", "which", "who", "whom", "whose", "how", "many", "much", "when", "where", "does", "do", "did", "has", "have", "had", "that", "this", "these", "those", "there", "their", "its", "it", "as", "than", "per", "each", "all", "any", "any", "one", "ones", "tell", "me", "give", "show", "list", "name", "find", "total", "sum", "average", "mean", "number", "count", "value", "values", "highest", "lowest", "largest", "smallest", "most", "least", "more", "less", "max", "min", "maximum", "minimum", "over", "under", "above", "below", "between", "after", "before", "since", "during", "not", "no", "yes", "s", "i", "you", "we", "they", "table", "row", "rows", "entries", "records", "greater", "fewer", "top", "bottom", "same", "different", "distinct", "unique", "times", "time", "day", "days", "year", "years"])
# words that may be a cell but are too common to be a filter on their own (still linked as part of a longer n-gram)
_MONTHS = {m: i + 1 for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"])}
_MONTHS.update({m[:3]: i for m, i in list(_MONTHS.items())})
_MONTHS["sept"] = 9
_TOKEN = re.compile(r"[$€£]?\d(?:[\d,]*\d)?(?:\.\d+)?%?|[^\W_]+(?:['’][^\W_]+)*|#\d+|[^\s\w]", re.UNICODE)
YEAR_TEXT = re.compile(r"^(1[5-9]\d\d|20\d\d|21\d\d)$")  # a number that can be a year
_MON = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DATE_PATTERNS = [
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), ("y", "m", "d")),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"), ("m", "d", "y")),
    (re.compile(rf"\b{_MON}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.I), ("M", "d", "y")),
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MON},?\s+(\d{{4}})\b", re.I), ("d", "M", "y")),
]
# everyday words for common cell values ('women' ~ 'Female'); soft links, below exact ones
SYNONYMS = {"women": ["female", "f"], "woman": ["female", "f"], "ladies": ["female"], "girls": ["female"],
            "men": ["male", "m"], "man": ["male", "m"], "guys": ["male"], "boys": ["male"],
            "female": ["f", "woman", "women"], "male": ["m", "man", "men"], "usa": ["us", "united states"],
            "us": ["usa", "united states"], "uk": ["united kingdom", "great britain"]}
_NEG = {"non", "not", "no", "without", "never", "nonsmoking", "n't"}


def words(text: str) -> list[str]:
    """Lower-case word tokens of a header or question (snake/camel case split)."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(text))
    return [w.lower() for w in re.findall(r"[^\W_]+", s)]


def norm(text: str) -> str:
    """The normalised form values are matched in: lower case, punctuation dropped, spaces collapsed."""
    s = str(text).lower().replace("&", " and ")
    s = re.sub(r"[’'`]", "", s)
    s = re.sub(r"[^\w#]+", " ", s)
    return re.sub(r"\s+", " ", s.replace("_", " ")).strip()


def stem(w: str) -> str:
    """A light stem so 'snowy'/'snow', 'drizzly'/'drizzle', 'cities'/'city', 'sunny'/'sun' meet; numbers
    stay whole ('2000' is not '200')."""
    if len(w) <= 3 or any(ch.isdigit() for ch in w):
        return w
    for suf, rep in (("ies", "y"), ("ied", "y"), ("ing", ""), ("es", ""), ("ed", ""), ("s", "")):
        if len(w) > len(suf) + 2 and w.endswith(suf) and not w.endswith("ss"):
            w = w[: -len(suf)] + rep
            break
    if len(w) > 3 and w[-1] in "ye":
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiou":
        w = w[:-1]
    return w


@dataclass
class Column:
    index: int  # position in the frame
    name: str  # header as shown to the model
    ident: str  # SQL identifier (c0, c1, …), validated
    kind: str  # text | number | date | bool
    num_ident: str | None = None  # column holding its numbers (itself, or a shadow for numeric text)
    date_ident: str | None = None  # column holding its dates (itself, or a shadow for date text)
    lo: float | None = None
    hi: float | None = None
    samples: list[str] = field(default_factory=list)


@dataclass
class Mention:
    """A question span that can be a condition value: a cell of a text column, a number, a year, a
    date, or a yes/no attribute. ``columns`` lists the text/bool columns a linked cell belongs to;
    numbers, years and dates fit every column of their kind."""

    start: int  # character offsets in the question
    end: int
    text: str
    kind: str  # cell | number | year | date | bool
    value: Any  # the cell's value / float / int year / date / bool
    columns: dict[int, tuple[Any, float]] = field(default_factory=dict)  # col -> (cell value, link score)
    score: float = 1.0
    month: int | None = None  # a year written with its month ('March 2014')


class TableSchema:
    """Columns of one frame, its registered form for DuckDB, and an index of its text cells."""

    def __init__(self, frame: pd.DataFrame, headers: list[str] | None = None):
        headers = [str(h) for h in (headers or list(frame.columns))]
        self.headers = [h if h.strip() else f"column {i + 1}" for i, h in enumerate(headers)]
        self.n_rows = len(frame)
        self.columns: list[Column] = []
        data: dict[str, Any] = {}
        for i in range(frame.shape[1]):
            s = frame.iloc[:, i]
            col = Column(i, self.headers[i], f"c{i}", "text")
            if pd.api.types.is_bool_dtype(s.dtype):
                col.kind = "bool"
                data[col.ident] = s.astype("boolean")
            elif pd.api.types.is_numeric_dtype(s.dtype):
                col.kind, col.num_ident = "number", col.ident
                data[col.ident] = pd.to_numeric(s, errors="coerce").astype("float64") \
                    if not pd.api.types.is_integer_dtype(s.dtype) else s
            elif pd.api.types.is_datetime64_any_dtype(s.dtype):
                col.kind, col.date_ident = "date", col.ident
                data[col.ident] = pd.to_datetime(s, errors="coerce")
            else:
                vals = [None if _missing(v) else v for v in s.tolist()]
                if vals and all(isinstance(v, (date, datetime)) or v is None for v in vals) and any(vals):
                    col.kind, col.date_ident = "date", col.ident
                    data[col.ident] = pd.to_datetime(pd.Series(vals), errors="coerce")
                elif vals and all(isinstance(v, bool) or v is None for v in vals) and any(v is not None for v in vals):
                    col.kind = "bool"
                    data[col.ident] = pd.Series(vals, dtype="boolean")
                else:
                    texts = [None if v is None else cell_text(v) for v in vals]
                    data[col.ident] = pd.Series(texts, dtype="object")
                    present = [t for t in texts if t]
                    nums = [parse_number(t) for t in present]
                    if present and sum(n is not None for n in nums) >= 0.9 * len(present):
                        col.num_ident = f"n{i}"
                        data[col.num_ident] = pd.Series([parse_number(t) if t else None for t in texts],
                                                        dtype="float64")
                    elif present and _looks_like_dates(present):
                        parsed = [parse_date_text(t) if t else None for t in texts]
                        if sum(p is not None for p in parsed) >= 0.9 * len(present):
                            col.date_ident = f"d{i}"
                            data[col.date_ident] = pd.to_datetime(pd.Series(parsed), errors="coerce")
            self.columns.append(col)
        data["__row"] = range(len(frame))
        self.frame = pd.DataFrame(data, index=range(len(frame)))
        for col in self.columns:
            self._describe(col)
        self._index: dict[str, list[tuple[int, Any]]] | None = None

    # ---- description ----------------------------------------------------------------------------
    def _describe(self, col: Column) -> None:
        if col.num_ident:
            s = self.frame[col.num_ident].dropna()
            if len(s):
                col.lo, col.hi = float(s.min()), float(s.max())
        if col.date_ident:
            s = self.frame[col.date_ident].dropna()
            if len(s):
                col.lo, col.hi = float(s.min().year), float(s.max().year)
        raw = self.frame[col.ident]
        seen: list[str] = []
        for v in raw.tolist()[:50]:
            t = cell_text(v)
            if t and t not in seen:
                seen.append(t)
            if len(seen) == 2:
                break
        col.samples = seen

    def type_word(self, col: Column) -> str:
        if col.kind == "text" and col.num_ident:
            return "number"
        if col.kind == "text" and col.date_ident:
            return "date"
        return col.kind

    def column(self, i: int) -> Column:
        return self.columns[i]

    def name_column(self, exclude: int | None = None) -> int | None:
        """The text column with the most distinct values (other than ``exclude``): what rows are called
        ('Which pickup …' answers with a model, not its manufacturer)."""
        best, best_n = None, 0
        for col in self.columns:
            if col.kind != "text" or col.num_ident or col.date_ident or col.index == exclude:
                continue
            n = int(self.frame[col.ident].nunique())
            if n > best_n:
                best, best_n = col.index, n
        return best

    # ---- value index ----------------------------------------------------------------------------
    def text_index(self) -> dict[str, list[tuple[int, Any]]]:
        """normalised cell text -> [(column, cell value)] over every text column of the whole table."""
        if self._index is None:
            idx: dict[str, list[tuple[int, Any]]] = defaultdict(list)
            for col in self.columns:
                if col.kind != "text":
                    continue
                for v in pd.unique(self.frame[col.ident].dropna()):
                    # the cell as written, and its camel-case words: 'AsstProf' is also 'asst prof'
                    for key in dict.fromkeys((norm(v), " ".join(words(v)))):
                        if key and (col.index, v) not in idx[key]:
                            idx[key].append((col.index, v))
            self._index = dict(idx)
            tok: dict[str, set[str]] = defaultdict(set)
            first2: dict[str, set[str]] = defaultdict(set)
            for key in self._index:
                for w in key.split():
                    for form in (w, *ABBREV.get(w, ())):  # 'asst prof' is met by 'assistant professors'
                        if " " not in form:
                            tok[form].add(key)
                            tok[stem(form)].add(key)
                first2[key[:2]].add(key)
            self._tok, self._first2 = tok, first2
        return self._index


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v)) if not isinstance(v, (list, dict, tuple)) else False
    except (TypeError, ValueError):
        return False


def _looks_like_dates(texts: list[str]) -> bool:
    sample = texts[:20]
    return all(re.search(r"\b(1[6-9]|20)\d\d\b", t) and re.search(r"[a-zA-Z]{3}|[-/]", t) for t in sample)


def parse_date_text(text: str) -> date | None:
    """A calendar date written in the usual ways (2012-07-04, 7/4/2012, July 4, 2012, Jul 4 2012,
    4 July 2012, Mar 1 2010); None when it is not one."""
    t = str(text).strip()
    for rx, order in _DATE_PATTERNS:
        m = rx.search(t)
        if m:
            return _date_from(m, order)
    return None


def _date_from(m: re.Match, order: tuple[str, ...]) -> date | None:
    parts = dict(zip(order, m.groups(), strict=True))
    try:
        month = _MONTHS.get(parts["M"].lower()[:3]) if "M" in parts else int(parts["m"])
        return date(int(parts["y"]), int(month), int(parts["d"]))
    except (TypeError, ValueError):
        return None


# ---- linking ------------------------------------------------------------------------------------
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "k": 1e3}
_SCALE = re.compile(r"\s+(thousand|million|billion|trillion)\b|(k)\b", re.I)  # '5 million', '150k


@functools.lru_cache(maxsize=4096)
def tokens(question: str) -> tuple[tuple[str, int, int], ...]:
    """(token, start, end) of a question's words, numbers and signs (cached: every feature reads them)."""
    return tuple((m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(question))


def link(question: str, schema: TableSchema, max_n: int = 6) -> list[Mention]:
    """Every condition value the question may mean, longest/best first, without overlaps among cells."""
    out: list[Mention] = []
    toks = tokens(question)
    taken: set[int] = set()  # character positions claimed by dates (so '2012' in a date is not a year too)
    for rx, order in _DATE_PATTERNS:
        for m in rx.finditer(question):
            if any(p in taken for p in range(m.start(), m.end())):
                continue
            d = _date_from(m, order)
            if d is not None:
                out.append(Mention(m.start(), m.end(), m.group(0), "date", d))
                taken.update(range(m.start(), m.end()))
    clock = _clock_mentions(question, schema, taken)  # '8am' is a time of day, not the number 8
    for c in clock:
        taken.update(range(c.start, c.end))
    # numbers (a 4-digit integer is also a year)
    for t, s, e in toks:
        if s in taken or not re.match(r"^[$€£]?\d", t):
            continue
        x = parse_number(t.replace("%", "")) if t.endswith("%") else parse_number(t)
        if x is None:
            continue
        if s > 0 and question[s - 1] in "-−" and (s == 1 or not question[s - 2].isalnum()):
            x, s, t = -x, s - 1, question[s - 1] + t  # '-122.4' (a minus sign, not a hyphen)
        scale = _SCALE.match(question, e)
        if scale:  # '5 million people', '2.5 billion'
            x, e, t = x * _SCALES[(scale.group(1) or scale.group(2)).lower()], scale.end(), question[s:scale.end()]
            out.append(Mention(s, e, t, "number", x))
            continue
        if YEAR_TEXT.match(t):
            y = Mention(s, e, t, "year", int(t))
            mon = re.search(rf"\b{_MON}\s+(?:of\s+)?$", question[:s], re.I)
            if mon:  # 'March 2014': the year's condition becomes the month's
                y.month = _MONTHS.get(mon.group(1).lower()[:3])
            out.append(y)
        out.append(Mention(s, e, t, "number", x))
    out += _month_mentions(toks, schema, taken)
    out += clock
    out += _cell_mentions(question, toks, schema, max_n, taken)
    out += _bool_mentions(toks, schema)
    return out


def _month_mentions(toks, schema: TableSchema, taken: set[int]) -> list[Mention]:
    """'in January 2010' over a table with a numeric ``month`` column: the month name is the number 1
    ('May' only capitalised: lower-case 'may' is the verb). Not inside a date already linked."""
    if not any("month" in words(c.name) and c.num_ident is not None for c in schema.columns):
        return []
    out = []
    for t, s, e in toks:
        k = _MONTHS.get(t.lower()) if len(t) >= 3 else None
        if k is None or s in taken or (t.lower() in ("may", "mar") and t[0].islower()):
            continue
        out.append(Mention(s, e, t, "number", float(k)))
    return out


_CLOCK = re.compile(r"\b(?:(noon|midday|midnight)|(\d{1,2})(?::00)?\s*([ap])\.?m\b\.?)", re.I)


def _clock_mentions(question: str, schema: TableSchema, taken: set[int]) -> list[Mention]:
    """'at noon', 'at 8am', '3 pm' over a table with a numeric ``hour`` column: the hour of the day (0-23)."""
    if not any("hour" in words(c.name) and c.num_ident is not None for c in schema.columns):
        return []
    out = []
    for m in _CLOCK.finditer(question):
        if any(p in taken for p in range(m.start(), m.end())):
            continue
        if m.group(1):
            h = 0 if m.group(1).lower() == "midnight" else 12
        else:
            h = int(m.group(2)) % 12 + (12 if m.group(3).lower() == "p" else 0)
            if int(m.group(2)) > 12:
                continue
        out.append(Mention(m.start(), m.end(), m.group(0), "number", float(h)))
    return out


_MONTH_BEFORE = re.compile(rf"\b{_MON}\s+(?:the\s+)?$", re.I)  # 'July 4', 'August the 28th'
_OF_MONTH_AFTER = re.compile(rf"^(?:st|nd|rd|th)?\s+(?:of\s+)?{_MON}\b", re.I)  # '4th of July'


def is_day_of_month(question: str, m: Mention) -> bool:
    """Is a number a day of the month by its neighbours: 'July 4', 'August the 28th', 'the 4th of July'?"""
    return m.text.isdigit() and 1 <= m.value <= 31 and bool(
        _MONTH_BEFORE.search(question[:m.start]) or _OF_MONTH_AFTER.match(question[m.end:]))


def is_clock_time(text: str) -> bool:
    """Is a mention's text a time of day ('noon', '8am', '3 pm')?"""
    return bool(_CLOCK.fullmatch(text.strip()))


def _cell_mentions(question: str, toks, schema: TableSchema, max_n: int, taken: set[int]) -> list[Mention]:
    index = schema.text_index()
    if not index:
        return []
    found: list[Mention] = []
    n_tok = len(toks)
    for n in range(min(max_n, n_tok), 0, -1):
        for i in range(n_tok - n + 1):
            span = toks[i:i + n]
            s, e = span[0][1], span[-1][2]
            text = question[s:e]
            key = norm(text)
            if not key:
                continue
            ws = key.split()
            if all(w in STOPWORDS for w in ws) and not (n == 1 and len(key) == 1):
                continue
            hits: dict[int, tuple[Any, float]] = {}
            if n == 1 and len(key) < 2:  # 'discipline A', 'grade B': a one-letter cell right after its header
                prev = stem(norm(toks[i - 1][0])) if i > 0 else ""
                for col, v in index.get(key, []):
                    if prev and prev in _header_stems(schema.columns[col].name):
                        hits[col] = (v, 1.0)
                if hits:
                    found.append(Mention(s, e, text, "cell", None, hits, 1.0))
                continue
            for col, v in index.get(key, []):
                hits[col] = (v, 1.0)
            if not hits and ws and ws[0] == "the" and " ".join(ws[1:]) in index:
                continue  # 'the X' is linked through X itself
            if not hits:
                hits = _soft_hits(key, schema, ws)
            if hits:
                found.append(Mention(s, e, text, "cell", None, hits, max(sc for _, sc in hits.values())))
    # keep the best non-overlapping spans: longer and higher-scoring first
    found.sort(key=lambda m: (-m.score, -(m.end - m.start)))
    kept: list[Mention] = []
    for m in found:
        if any(not (m.end <= k.start or m.start >= k.end) for k in kept):
            continue
        kept.append(m)
    for m in kept:
        first = next(iter(m.columns.values()))
        m.value = first[0]
    return kept


def _superlative_of(word: str, base: str) -> bool:
    """'lightest' of 'light', 'hottest' of 'hot', 'earliest' of 'early'."""
    return word.endswith("est") and (word[:-3] == base or word[:-4] == base or word[:-4] + "y" == base)


def _soft_hits(key: str, schema: TableSchema, ws: list[str]) -> dict[int, tuple[Any, float]]:
    """Normalised-stem, prefix/abbreviation, containment and fuzzy matches (scores below 1)."""
    index, tok, first2 = schema.text_index(), schema._tok, schema._first2
    hits: dict[int, tuple[Any, float]] = {}

    def add(k: str, score: float) -> None:
        for col, v in index[k]:
            if col not in hits or hits[col][1] < score:
                hits[col] = (v, score)

    content = [w for w in ws if w not in STOPWORDS]
    if len(ws) == 1 and ws[0] in SYNONYMS:
        for k in SYNONYMS[ws[0]]:
            if k in index:
                add(k, 0.85)
    if len(ws) == 1 and not hits:
        w = ws[0]
        st = stem(w)
        for k in sorted(tok.get(st, ())):  # 'snowy' ~ 'snow' (sorted: the same links under any hash seed)
            if " " not in k and stem(k) == st:
                add(k, 0.9)
        if not hits and len(w) >= 3:  # 'sunday' ~ 'Sun', 'thurs' ~ 'Thur'; 'lightest' is not the colour 'light'
            for k in sorted(first2.get(w[:2], ())):
                if " " not in k and len(k) >= 3 and (w.startswith(k) or k.startswith(w)) \
                        and not _superlative_of(w, k):
                    add(k, 0.75)
        if not hits and len(st) >= 5:  # 'rodents' ~ 'Rodentia' (the stem begins the cell)
            for k in sorted(first2.get(w[:2], ())):
                if " " not in k and k.startswith(st):
                    add(k, 0.7)
    if not hits and content and sum(len(w) for w in content) >= 4:
        # every content word appears in the cell: 'o hare' ~ 'chicago o hare international'
        sets = [tok.get(w, set()) | tok.get(stem(w), set()) for w in content]
        common = set.intersection(*sets) if sets else set()
        if 0 < len(common) <= 3:
            for k in sorted(common):
                cover = len(key) / max(len(k), 1)
                if cover >= 0.3:
                    add(k, 0.5 + 0.35 * min(cover, 1.0))
    if not hits and len(key) >= 5:
        cands = [k for k in sorted(first2.get(key[:2], ())) if abs(len(k) - len(key)) <= max(2, len(key) // 4)]
        best = difflib.get_close_matches(key, cands, n=2, cutoff=0.85)
        for k in best:
            add(k, 0.8 * difflib.SequenceMatcher(None, key, k).ratio())
    return hits


def _bool_mentions(toks, schema: TableSchema) -> list[Mention]:
    """'smokers' / 'non-smokers' for a boolean column 'smoker' (the header word, negated or not)."""
    out = []
    for col in schema.columns:
        if col.kind != "bool":
            continue
        hw = {stem(w) for w in header_words(col.name) if w not in STOPWORDS}
        hw |= {w[:-2] for w in hw if w.endswith("er") and len(w) > 4}  # smoker ~ smoking
        if not hw:
            continue
        for i, (t, s, e) in enumerate(toks):
            lw = t.lower()
            neg = False
            if lw.startswith("non") and stem(lw[3:].lstrip("-")) in hw:
                neg, ok = True, True
            else:
                ok = stem(lw) in hw or (lw.endswith("ing") and lw[:-3] in hw)
            if not ok:
                continue
            prev = [toks[j][0].lower() for j in range(max(0, i - 2), i)]
            if any(p in _NEG or p.endswith("n't") for p in prev) or (prev and prev[-1] == "-" and i >= 2
                                                                         and toks[i - 2][0].lower() == "non"):
                neg = True
            start = toks[i - 2][1] if neg and i >= 2 and toks[i - 1][0] == "-" else s
            out.append(Mention(start, e, t, "bool", not neg, {col.index: (not neg, 1.0)}))
    return out


def compatible(m: Mention, col: Column) -> bool:
    """Can ``m`` be a condition value on ``col``?"""
    if m.kind in ("cell", "bool"):
        return col.index in m.columns
    if m.kind == "number":
        return col.num_ident is not None
    if m.kind == "year":
        return col.date_ident is not None
    if m.kind == "date":
        return col.date_ident is not None
    return False


def in_range(m: Mention, col: Column) -> bool:
    if col.lo is None or col.hi is None or m.kind not in ("number", "year", "date"):
        return False
    x = float(m.value.year) if m.kind == "date" else float(m.value)
    span = max(col.hi - col.lo, 1e-9)
    return col.lo - 0.5 * span <= x <= col.hi + 0.5 * span


def mention_text_for(m: Mention, col: Column) -> str:
    """How a linked value is shown inside a column's header segment."""
    if m.kind in ("cell", "bool"):
        return cell_text(m.columns[col.index][0]) if m.kind == "cell" else ("yes" if m.value else "no")
    return m.text


@functools.lru_cache(maxsize=4096)
def _header_stems(header: str) -> frozenset[str]:
    return frozenset(stem(w) for w in header_words(header) if w not in ("of", "the", "in"))


@functools.lru_cache(maxsize=16384)
def _named_by(token: str) -> frozenset[str]:
    """Header-word stems one question token names: itself or what it signals ('windiest' -> wind)."""
    ws = words(token)
    return frozenset({stem(w) for w in ws} | {stem(t) for w in ws for t in SIGNALS.get(w, ())})


def named_positions(question: str, header: str) -> list[int]:
    """Positions in ``tokens(question)`` of the words that name ``header`` (a header word, its stem, or
    an everyday word for it) -- where in the question a column is talked about."""
    h = _header_stems(header)
    return [i for i, (t, _, _) in enumerate(tokens(question)) if h and _named_by(t) & h]


def token_span(question: str, m: Mention) -> tuple[int, int]:
    """The first and one-past-last ``tokens(question)`` positions a mention covers."""
    inside = [i for i, (_, s, e) in enumerate(tokens(question)) if s < m.end and e > m.start]
    return (inside[0], inside[-1] + 1) if inside else (0, 0)


def header_gap(span: tuple[int, int], positions: list[int], window: int = 5) -> float | None:
    """How far (in tokens) the nearest naming of a column lies from a mention, a naming after the value
    ('over 30 mm', '38 yield') counting one token more than one before it ('weight over 3000');
    None when none lies within ``window`` tokens. Namings inside the mention do not count."""
    best = None
    for p in positions:
        if p < span[0]:
            gap = float(span[0] - p - 1)
        elif p >= span[1]:
            gap = float(p - span[1]) + 1.0
        else:
            continue
        if gap <= window and (best is None or gap < best):
            best = gap
    return best


def superlative_near(question: str, header: str) -> bool:
    """Does the question rank by this column: one of its superlatives ('the windiest'), or a superlative
    word right before a word that names it ('the most horsepower', 'highest temp')?"""
    adj = adjectives_for(header)
    q = " " + norm(question) + " "
    if adj and any(f" {norm(a)} " in q for a in (*adj.most, *adj.least)):
        return True
    toks = [t.lower() for t, _, _ in tokens(question)]
    named = set(named_positions(question, header))
    return any(w in SUPERLATIVES and (i + 1 in named or i + 2 in named) for i, w in enumerate(toks))


@functools.lru_cache(maxsize=4096)
def _header_phrase(header: str) -> tuple[str, ...]:
    """A header as the stemmed words a question says it with (spelled out: ``tailnum`` -> tail number)."""
    return tuple(stem(w) for w in words(header_text(header)))


def _is_superlative(word: str) -> bool:
    """A lexicon superlative, or any long '-est' word ('strongest', 'fattiest')."""
    return word in SUPERLATIVES or (len(word) >= 6 and word.endswith("est"))


def is_calendar_column(col: Column) -> bool:
    """Is the column a calendar unit (year, month, day, hour …)? Its numbers are counted, never summed."""
    return bool(set(header_words(col.name)) & CALENDAR_WORDS)


_WH_ASKS = re.compile(r"\b(?:which|what)(?:s| is| was| are| were)?(?: the)? (.+)$")
_BARE_ASKS = re.compile(r"^(?:(?:give|tell|show) me )?(?:the )?(.+)$")


def asked_column(question: str, columns: list[Column]) -> int | None:
    """The column a wh-phrase names as the thing asked for: 'Which model …', 'in what year …', 'What's
    the tail number of …' -- or, with no wh-word, 'tail number of the oldest …' -- is that column.
    None when no header (spelled out, stemmed) follows whole, or two columns tie."""
    q = norm(question)
    wh = _WH_ASKS.search(q)
    m = wh or _BARE_ASKS.match(q)
    if not m:
        return None
    after = tuple(stem(w) for w in m.group(1).split())
    found: dict[int, list[int]] = {}
    for col in columns:
        h = _header_phrase(col.name)
        if not h or after[:len(h)] != h:
            continue
        if wh is None and after[len(h):len(h) + 1] != ("of",):
            continue  # without a wh-word only '<header> of …' asks for the column
        found.setdefault(len(h), []).append(col.index)
    if not found:
        return None
    longest = found[max(found)]
    return longest[0] if len(longest) == 1 else None


CALENDAR_WORDS = frozenset(["year", "yr", "month", "day", "week", "quarter", "season", "hour", "minute"])
_ASKS_FOR_A_ROW = re.compile(r"\b(?:which|whats?|who|whom|whose|where|when|name|identify|list|show|find)\b"
                             r"|\b(?:with|having|has|had|of) the\b|\bthe one\b")


def asks_for_a_row(question: str) -> bool:
    """Does the question ask for a row (an entity) rather than a value? 'Which state …', 'Name the
    primate …', 'the shift with the greatest vote count' do; 'longest bill on a female penguin', 'How
    heavy is the heaviest chinstrap?' do not."""
    return bool(_ASKS_FOR_A_ROW.search(norm(question)))


def ranked_columns(question: str, columns: list[Column]) -> list[int]:
    """The number/date columns a superlative names most fully: 'Smallest bill depth' ranks by
    ``bill_depth_mm`` (two header words after the superlative), not ``bill_length_mm`` (one); 'longest
    bill' names both; 'Strongest wind gust', 'highest air pressure' (one word between) too. Empty when no
    superlative is followed by a header word."""
    toks = norm(question).split()
    best: dict[int, float] = {}
    for i, t in enumerate(toks):
        if not _is_superlative(t):
            continue
        for skip in (0, 1):  # 'highest air pressure': one word may come between, not 'max when votes'
            if skip and (i + 1 >= len(toks) or toks[i + 1] in STOPWORDS or toks[i + 1] in ("when", "if", "while")):
                continue
            after = [stem(w) for w in toks[i + 1 + skip:i + 6 + skip]]
            for col in columns:
                if col.num_ident is None and col.date_ident is None and col.kind != "date":
                    continue
                h = _header_phrase(col.name)
                n = 0
                while n < len(h) and n < len(after) and after[n] == h[n]:
                    n += 1
                if n:
                    best[col.index] = max(best.get(col.index, 0), n - 0.5 * skip)
    if not best:
        return []
    top = max(best.values())
    return [c for c, n in best.items() if n == top]


_NOUN_ASKED = re.compile(r"(?:\bwhich|\bhow many|\bamong(?: the)?|\bwhat(?:s| is| are) the)$")


def names_the_rows(question: str, m: Mention) -> bool:
    """Is a linked cell the noun the question asks about -- 'Which herbivore …', 'how many carnivores …',
    'among the omnivores' -- so the rows are those holding it (a filter, however softly it linked)?"""
    return m.kind == "cell" and bool(_NOUN_ASKED.search(norm(question[:m.start])))


_ROWS_COUNTED = re.compile(r"\b(?:how many|number of|count of|count the)\W*$", re.I)


def counts_the_rows(question: str, m: Mention) -> bool:
    """Is a linked cell what the question counts -- 'How many Lakers …', 'number of Knicks …'?"""
    return m.kind == "cell" and bool(_ROWS_COUNTED.search(question[:m.start]))


_OP_BEFORE = [(">=", r"at least|no less than|no fewer than|a minimum of|not less than|since|(?:on|in) or after"),
              ("<=", r"at most|no more than|a maximum of|up to|not more than|(?:on|in) or before"),
              (">", r"over|above|after|since|exceeding|beyond|(?:more|greater|higher|larger|bigger|older|newer|"
                    r"later|taller|heavier|longer|faster) than"),
              ("<", r"under|below|before|(?:less|fewer|lower|smaller|younger|earlier|shorter|lighter|slower) than")]
_OP_BEFORE_RX = [(op, re.compile(rf"\b(?:{alt})(?: \$)?$")) for op, alt in _OP_BEFORE]
_OP_AFTER_RX = [(">=", re.compile(r"^\S*\s*(?:\w+\s+)?or (?:more|higher|above|greater|over|taller|heavier|longer|later|"
                                  r"bigger|larger|newer|older)\b")),
                ("<=", re.compile(r"^\S*\s*(?:\w+\s+)?or (?:less|fewer|lower|below|under|shorter|lighter|earlier|"
                                  r"smaller|younger)\b"))]


def comparison_op(question: str, m: Mention) -> str | None:
    """The operator a number's wording spells out: 'over 5 million' and 'taller than 190' are >, 'before
    2000' <, 'at least 3', 'since 2008' and '90 degrees or more' >=, 'at most 2' and 'in or before 2004' <=;
    None when the words say none."""
    if m.kind not in ("number", "year", "date"):
        return None
    before = question[:m.start].rstrip().lower()
    for op, rx in _OP_BEFORE_RX:
        if rx.search(before):
            return op
    after = question[m.end:].lower()
    for op, rx in _OP_AFTER_RX:
        if rx.match(after):
            return op
    return None


def compared_value(question: str, m: Mention) -> bool:
    """Is a number or year compared in so many words ('over 5 million', 'before 2000', '90 degrees or
    more')? Such a value is a condition, whatever else the question says."""
    return comparison_op(question, m) is not None


def ranked_row_column(question: str, columns: list[Column]) -> int | None:
    """The text column a superlative phrase is followed by -- 'the least populous state', 'lowest-sodium
    item at Arby's' -- is what the question asks for: the top row's value in it. None when no single text
    header follows a superlative (and at most one word after it), or when the question asks 'how …' (a value:
    'How tall is the tallest guard?')."""
    toks = norm(question).split()
    if toks[:1] == ["how"]:
        return None
    heads = {c.index: _header_phrase(c.name) for c in columns
             if c.kind == "text" and c.num_ident is None and c.date_ident is None}
    found = set()
    for i, t in enumerate(toks):
        if not _is_superlative(t):
            continue
        for skip in (1, 2):  # 'least populous state', 'lowest sodium item'
            after = tuple(stem(w) for w in toks[i + skip:i + skip + 4])
            found |= {c for c, h in heads.items() if h and after[:len(h)] == h}
    return found.pop() if len(found) == 1 else None


def superlative_direction(question: str, header: str) -> str | None:
    """'MAX' or 'MIN': which end of ``header``'s column the question's superlative asks for ('slowest speed'
    -> MIN through the lexicon's adjectives for speed); None when it does not say."""
    q = " " + norm(question) + " "
    adj = adjectives_for(header)
    if adj:
        up = any(f" {norm(a)} " in q for a in adj.most)
        down = any(f" {norm(a)} " in q for a in adj.least)
        if up != down:
            return "MAX" if up else "MIN"
    toks = set(q.split())
    up, down = bool(toks & SUPERLATIVES_UP), bool(toks & SUPERLATIVES_DOWN)
    return ("MAX" if up else "MIN") if up != down else None


_HOW_MANY = re.compile(r"\bhow many (.+)$")


def counted_column(question: str, columns: list[Column]) -> int | None:
    """The number column 'how many <its header> …' asks about ('how many seats does N102UW have',
    'in total, how many seats are on the MD-88s'): its values are summed, not rows counted."""
    m = _HOW_MANY.search(norm(question))
    if not m:
        return None
    after = tuple(stem(w) for w in m.group(1).split())
    hits = [c.index for c in columns if c.num_ident is not None and c.kind == "number"
            and not is_calendar_column(c)  # 'how many months …' counts rows
            and (h := _header_phrase(c.name)) and after[:len(h)] == h]
    return hits[0] if len(hits) == 1 else None


def header_overlap(question: str, header: str) -> float:
    """Share of a header's words (or their stems) found in the question -- directly, or signalled by an
    everyday word for them ('windiest' -> ``wind``, 'temperature' -> ``temp``; ``kira.tables.lexicon``)."""
    qw = words(question)
    q = {stem(w) for w in qw} | {stem(t) for w in qw for t in SIGNALS.get(w, ())}
    h = [stem(w) for w in header_words(header) if w not in ("of", "the", "in")]
    return sum(w in q for w in h) / len(h) if h else 0.0


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
