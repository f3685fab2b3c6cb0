"""Everyday words for table columns: abbreviations in headers, and the adjectives people use instead of
a column's name ("the windiest day" ranks by ``wind``, "older than 40" filters ``age``).

WHY one module: the question generator (``parser_data``) writes these words into training questions,
and the linker (``linking.header_overlap``) uses the same lexicon to tell the parser which header a
question's adjective points at -- so a header the parser has never seen still lights up when a
question says "heaviest" and the table has a ``weight_kg`` column. General English, not fitted to any
evaluation set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# header abbreviation -> what people write for it
ABBREV: dict[str, list[str]] = {
    "temp": ["temperature"], "max": ["maximum", "highest", "high"], "min": ["minimum", "lowest", "low"],
    "avg": ["average"], "pct": ["percent", "percentage"], "num": ["number"], "no": ["number"],
    "pop": ["population"], "lat": ["latitude"], "lon": ["longitude"], "lng": ["longitude"], "long": ["longitude"],
    "qty": ["quantity"], "amt": ["amount"], "dept": ["department"], "yr": ["year"], "exp": ["expectancy"],
    "percap": ["per capita"], "gdp": ["gdp"], "dob": ["date of birth"], "id": ["id"], "precip": ["precipitation"],
    "dist": ["distance"], "cnt": ["count"], "desc": ["description"], "addr": ["address"], "ht": ["height"],
    "wt": ["weight"], "mpg": ["miles per gallon"], "hp": ["horsepower"], "lbs": ["pounds"], "cat": ["category"],
    "elev": ["elevation"], "yld": ["yield"], "pts": ["points"], "amt_usd": ["amount"], "usd": ["dollars"],
    # abbreviations data sets use in headers (R's mpg, msleep, murders; survey and sales tables)
    "hwy": ["highway"], "cty": ["city"], "displ": ["displacement", "engine size"], "cyl": ["cylinders"],
    "drv": ["drive"], "trans": ["transmission"], "abb": ["abbreviation"], "abbr": ["abbreviation"],
    "mfr": ["manufacturer"], "manuf": ["manufacturer"], "wgt": ["weight"], "hgt": ["height"],
    "len": ["length"], "vol": ["volume"], "freq": ["frequency"], "dur": ["duration"], "tot": ["total"],
    "yrs": ["years"], "hrs": ["hours"], "mins": ["minutes"], "secs": ["seconds"], "sqft": ["square feet"],
    "accel": ["acceleration"], "eng": ["engine"], "perc": ["percent"], "prop": ["proportion"],
    "pax": ["passengers"], "emp": ["employees"], "rev": ["revenue"], "sal": ["salary"], "ctry": ["country"],
    # ... and in cells ('AsstProf', 'Dept Mgr', 'Intl')
    "asst": ["assistant"], "assoc": ["associate"], "prof": ["professor"], "mgr": ["manager"],
    "intl": ["international"], "natl": ["national"], "univ": ["university"], "govt": ["government"],
}

# header words that are read as their spelled-out form in the encoder's view of a column (the ambiguous
# ones -- 'no', 'long', 'max', 'id', 'cat', 'exp' -- stay as written)
SPELLED_OUT = {k: v[0] for k, v in ABBREV.items() if k not in ("no", "long", "max", "min", "id", "cat", "exp",
                                                             "gdp", "mpg", "hp", "avg", "amt_usd")}
# abbreviations that end run-together headers ('bodywt' -> body wt; no English word ends in these) and
# ones that start them when the rest is an abbreviation too ('maxtemp' -> max temp, not 'minute')
_JOINED_END = ("wt", "pct", "cnt", "amt", "qty", "temp", "wgt", "hgt", "avg", "usd", "num")
_JOINED_START = ("max", "min", "avg", "tot", "num", "pct")


# words that rank rows by the column named right after them ('the most horsepower', 'highest temp')
# ... split by the end they rank towards ('oldest' is either: the smallest year, the largest age)
SUPERLATIVES_UP = frozenset(["highest", "largest", "maximum", "biggest", "greatest", "top", "max", "most", "peak",
                             "latest", "newest", "best", "longest", "recent", "last"])
SUPERLATIVES_DOWN = frozenset(["lowest", "smallest", "minimum", "least", "min", "fewest", "earliest", "first", "worst",
                               "shortest"])
SUPERLATIVES = SUPERLATIVES_UP | SUPERLATIVES_DOWN | {"oldest"}


@dataclass(frozen=True)
class Adjectives:
    """What people say for a column instead of its name: superlatives (ARGMAX/MAX, ARGMIN/MIN), the
    'how X' base word, comparatives for conditions (> and <), and a unit or two written after numbers."""

    most: tuple[str, ...]
    least: tuple[str, ...]
    base: str | None = None
    more: tuple[str, ...] = ()
    less: tuple[str, ...] = ()
    units: tuple[str, ...] = ()


ADJECTIVES: dict[str, Adjectives] = {
    "temperature": Adjectives(("hottest", "warmest"), ("coldest", "coolest"), "hot", ("hotter than", "warmer than"),
                              ("colder than", "cooler than"), ("degrees",)),
    "wind": Adjectives(("windiest",), ("calmest", "least windy"), "windy", ("windier than",), ("calmer than",),
                       ("mph", "km/h")),
    "precipitation": Adjectives(("wettest", "rainiest"), ("driest",), "wet", ("wetter than",), ("drier than",),
                                ("mm", "inches")),
    "rainfall": Adjectives(("wettest", "rainiest"), ("driest",), "rainy", ("wetter than",), ("drier than",),
                           ("mm", "inches")),
    "latitude": Adjectives(("northernmost", "farthest north", "furthest north", "most northern"),
                           ("southernmost", "farthest south", "furthest south", "most southern"), None,
                           ("north of",), ("south of",), ("degrees",)),
    "longitude": Adjectives(("easternmost", "farthest east", "furthest east"),
                            ("westernmost", "farthest west", "furthest west"), None, ("east of",), ("west of",)),
    "age": Adjectives(("oldest",), ("youngest",), "old", ("older than",), ("younger than",), ("years", "years old")),
    "price": Adjectives(("most expensive", "priciest", "costliest"), ("cheapest", "least expensive"), "expensive",
                        ("more expensive than", "pricier than"), ("cheaper than", "less expensive than"),
                        ("dollars", "$")),
    "weight": Adjectives(("heaviest",), ("lightest",), "heavy", ("heavier than",), ("lighter than",), ("kg", "pounds")),
    "height": Adjectives(("tallest",), ("shortest",), "tall", ("taller than",), ("shorter than",), ("cm",)),
    "speed": Adjectives(("fastest", "quickest"), ("slowest",), "fast", ("faster than",), ("slower than",), ("mph",)),
    "population": Adjectives(("most populous", "biggest", "largest"), ("least populous", "smallest"), "populous",
                             ("more populous than", "bigger than"), ("smaller than",), ("people", "inhabitants")),
    "distance": Adjectives(("farthest", "longest"), ("closest", "shortest", "nearest"), "far",
                           ("farther than", "longer than"), ("closer than", "shorter than"), ("km", "miles")),
    "duration": Adjectives(("longest",), ("shortest",), "long", ("longer than",), ("shorter than",), ("minutes",)),
    "elevation": Adjectives(("highest",), ("lowest",), "high", ("higher than",), ("lower than",), ("meters", "feet")),
    "salary": Adjectives(("best paid", "highest paid"), ("worst paid", "lowest paid"), "well paid",
                         ("earning more than", "paid more than"), ("earning less than", "paid less than"),
                         ("dollars", "$")),
    "tip": Adjectives(("most generous",), ("stingiest", "least generous"), "generous", ("tipping more than",),
                      ("tipping less than",), ("dollars", "$")),
    "bill": Adjectives(("most expensive", "biggest"), ("cheapest", "smallest"), "expensive",
                       ("more expensive than",), ("cheaper than",), ("dollars", "$")),
    "votes": Adjectives(("most voted", "most popular"), ("least voted", "least popular"), "popular", (), (),
                        ("votes",)),
    "yield": Adjectives(("most productive", "highest yielding"), ("least productive", "lowest yielding"), "productive",
                        (), (), ("bushels",)),
    "year": Adjectives(("newest", "most recent", "latest"), ("oldest", "earliest"), None, ("after", "later than"),
                       ("before", "earlier than")),
    "date": Adjectives(("latest", "most recent", "last"), ("earliest", "first", "oldest"), None, ("after", "later than"),
                       ("before", "earlier than")),
    "size": Adjectives(("largest", "biggest"), ("smallest",), "big", ("larger than", "bigger than"),
                       ("smaller than",)),
    "area": Adjectives(("largest", "biggest"), ("smallest",), "big", ("larger than", "bigger than"),
                       ("smaller than",), ("square km", "km2")),
    "score": Adjectives(("best", "top scoring"), ("worst", "lowest scoring"), None, ("scoring more than",),
                        ("scoring less than",), ("points",)),
    "goals": Adjectives(("top scoring",), ("lowest scoring",), None, ("scoring more than",), ("scoring fewer than",),
                        ("goals",)),
    "rating": Adjectives(("best rated", "top rated", "highest rated"), ("worst rated", "lowest rated"), None,
                         ("rated above",), ("rated below",), ("stars",)),
    "revenue": Adjectives(("top selling", "best selling"), ("worst selling",), None, ("earning more than",),
                          ("earning less than",), ("dollars", "$")),
    "mileage": Adjectives(("most fuel efficient", "most economical"), ("least fuel efficient", "thirstiest"),
                          "efficient", (), (), ("mpg",)),
    "horsepower": Adjectives(("most powerful",), ("least powerful", "weakest"), "powerful", ("more powerful than",),
                             ("less powerful than",), ("hp",)),
}
# header word -> the ADJECTIVES key it means
ADJ_KEYS: dict[str, str] = {
    "temp": "temperature", "tempc": "temperature", "precip": "precipitation", "rain": "rainfall", "lat": "latitude",
    "lon": "longitude", "lng": "longitude", "pop": "population", "ht": "height", "wt": "weight", "cost": "price",
    "runtime": "duration", "minutes": "duration", "altitude": "elevation", "elev": "elevation", "mph": "speed",
    "wage": "salary", "pay": "salary", "miles": "distance", "dist": "distance", "tips": "tip", "gratuity": "tip",
    "ballots": "votes", "harvest": "yield", "hp": "horsepower", "mpg": "mileage", "points": "score",
    "pts": "score", "stars": "rating", "sales": "revenue", "income": "revenue",
    "surface": "area", "born": "date", "mass": "weight",
}


def header_words(header: str) -> list[str]:
    """A header's lower-case words (snake/camel case split), run-together abbreviations split apart
    ('bodywt' -> body, wt; 'maxtemp' -> max, temp), so the words a question uses can meet them."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(header))
    out: list[str] = []
    for w in (w.lower() for w in re.findall(r"[^\W_]+", s)):
        cut = next((len(w) - len(a) for a in _JOINED_END if w.endswith(a) and len(w) - len(a) >= 3
                    and w[:-len(a)].isalpha()), None)
        cut = cut or next((len(a) for a in _JOINED_START if w.startswith(a) and w[len(a):] in ABBREV), None)
        out += [w[:cut], w[cut:]] if cut else [w]
    return out


def header_text(header: str) -> str:
    """How a header reads to the encoder: its words, abbreviations spelled out ('hwy' -> highway)."""
    return " ".join(SPELLED_OUT.get(w, w) for w in header_words(header))


def adjectives_for(header: str) -> Adjectives | None:
    """The everyday adjectives for a header ('temp_max' -> temperature's), or None."""
    for w in header_words(header):
        key = ADJ_KEYS.get(w, w)
        if key in ADJECTIVES:
            return ADJECTIVES[key]
    return None


# verbs people use for a quantity instead of its name ('How much does Jabba weigh?', 'homes sold')
VERBS: dict[str, str] = {
    "weigh": "weight", "weighs": "weight", "weighed": "weight", "weighing": "weight",
    "cost": "price", "costs": "price", "priced": "price",
    "earn": "salary", "earns": "salary", "earned": "salary", "paid": "salary", "pay": "salary",
    "sell": "revenue", "sells": "revenue", "sold": "revenue",
    "measure": "size", "measures": "size",
}


def _signal_index() -> dict[str, set[str]]:
    """question word -> header words it signals ('windiest' -> {'wind'}, 'temperature' -> {'temp'})."""
    out: dict[str, set[str]] = {}

    def add(word: str, target: str) -> None:
        for w in word.split():
            if w not in ("most", "least", "than", "of", "more", "less", "farthest", "furthest", "best", "worst",
                         "top", "highest", "lowest", "biggest", "largest", "smallest", "longest", "shortest",
                         "first", "last", "high", "low",
                         "big", "long", "after", "before", "later", "earlier", "rated", "scoring", "selling",
                         "paid", "earning", "$", "years", "degrees", "dollars", "people"):
                out.setdefault(w, set()).add(target)

    for key, a in ADJECTIVES.items():
        targets = {key} | {h for h, k in ADJ_KEYS.items() if k == key}
        for phrase in (*a.most, *a.least, *a.more, *a.less, a.base or ""):
            for t in targets:
                add(phrase, t)
    for verb, key in VERBS.items():
        for t in {key} | {h for h, k in ADJ_KEYS.items() if k == key}:
            out.setdefault(verb, set()).add(t)
    for abbr, expansions in ABBREV.items():
        for e in expansions:
            if e not in ("highest", "high", "lowest", "low", "number", "id"):
                add(e, abbr)
    return out


SIGNALS = _signal_index()
