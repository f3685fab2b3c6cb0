"""Benchmark records: one schema for ``bench/regressions/*.yaml`` (described in bench/regressions/README.md).

A record says which bench ran (``name`` = file stem = bench script stem), how to reproduce it
(``command``), on what (``machine``, ``machine_load``, ``date``) and what came out (``metrics``:
headline figures, each against the peer measured in the same run, with an optional goal).
Anything else (per-k tables, setups, older runs) goes under ``details``; prose under ``notes``.

``validate(path)`` lists the problems of a file (empty when fine), ``load(path)`` reads one and
raises on problems, ``write(path, record)`` validates and writes one (the bench scripts' ``--out``).
Import-light on purpose: stdlib + pyyaml only.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, TypedDict

import yaml

REQUIRED_KEYS = ("name", "command", "machine", "machine_load", "date", "metrics")
OPTIONAL_KEYS = ("notes", "details")
METRIC_KEYS = ("metric", "value", "peer", "peer_value", "ratio", "goal", "met")
METRIC_OPTIONAL_KEYS = ("ratio_of",)
RATIO_OF = ("value / peer_value", "peer_value / value")
NOT_RECORDED = "not recorded"

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_GOAL = re.compile(r"^\s*(>=|<=|>|<|==)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:\s.*)?$")


class Metric(TypedDict, total=False):
    metric: str
    value: float
    peer: str | None
    peer_value: float | None
    ratio: float | None
    ratio_of: str
    goal: str | None
    met: bool | None


class Record(TypedDict, total=False):
    name: str
    command: str
    machine: str
    machine_load: str | float
    date: str
    metrics: list[Metric]
    notes: str
    details: dict[str, Any]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so notes and printed tables stay readable in the file."""


def _str(dumper: yaml.SafeDumper, s: str) -> yaml.ScalarNode:
    if "\n" in s.strip("\n") and all(not line.endswith(" ") for line in s.splitlines()):
        return dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", s)


_Dumper.add_representer(str, _str)


class RecordError(ValueError):
    """A benchmark record that does not follow the schema; ``problems`` lists why."""

    def __init__(self, where: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{where}: " + "; ".join(problems))


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def ratio_matches(ratio: float, expected: float) -> bool:
    """True when ``ratio`` equals ``expected`` within the rounding of recorded figures (1 %, or 0.005)."""
    return abs(ratio - expected) <= max(0.005, 0.01 * abs(expected))


def parse_goal(goal: str) -> tuple[str, float] | None:
    """``">= 2.0"`` (optionally followed by a remark) -> ``(">=", 2.0)``; None when not of that form."""
    m = _GOAL.match(goal)
    return (m.group(1), float(m.group(2))) if m else None


def goal_met(goal: str, figure: float) -> bool:
    op, bound = parse_goal(goal) or ("", math.nan)
    return {">=": figure >= bound, "<=": figure <= bound, ">": figure > bound, "<": figure < bound,
            "==": figure == bound}.get(op, False)


def _check_metric(i: int, m: Any) -> list[str]:
    where = f"metrics[{i}]"
    if not isinstance(m, dict):
        return [f"{where}: must be a mapping, got {type(m).__name__}"]
    if isinstance(m.get("metric"), str) and m["metric"]:
        where = f"metrics[{i}] ({m['metric']!r})"
    out: list[str] = []
    for k in METRIC_KEYS:
        if k not in m:
            out.append(f"{where}: missing key {k!r}")
    for k in m:
        if k not in METRIC_KEYS and k not in METRIC_OPTIONAL_KEYS:
            out.append(f"{where}: unknown key {k!r} (allowed: {', '.join(METRIC_KEYS + METRIC_OPTIONAL_KEYS)})")
    if out:
        return out
    if not isinstance(m["metric"], str) or not m["metric"]:
        out.append(f"{where}: 'metric' must be a non-empty string")
    if not _is_number(m["value"]):
        out.append(f"{where}: 'value' must be a number, got {m['value']!r}")
    if m["peer"] is not None and (not isinstance(m["peer"], str) or not m["peer"]):
        out.append(f"{where}: 'peer' must be a non-empty string or null, got {m['peer']!r}")
    for k in ("peer_value", "ratio"):
        if m[k] is not None and not _is_number(m[k]):
            out.append(f"{where}: {k!r} must be a number or null, got {m[k]!r}")
    if m["goal"] is not None and (not isinstance(m["goal"], str) or parse_goal(m["goal"]) is None):
        out.append(f"{where}: 'goal' must be null or a string like '>= 2.0', got {m['goal']!r}")
    if m["met"] is not None and not isinstance(m["met"], bool):
        out.append(f"{where}: 'met' must be true, false or null, got {m['met']!r}")
    ratio_of = m.get("ratio_of", RATIO_OF[0])
    if ratio_of not in RATIO_OF:
        out.append(f"{where}: 'ratio_of' must be one of {list(RATIO_OF)}, got {ratio_of!r}")
    if out:
        return out
    if m["peer_value"] is not None and m["peer"] is None:
        out.append(f"{where}: 'peer_value' is given but 'peer' is null (say what the figure is compared against)")
    if m["ratio"] is not None and m["peer_value"] is None:
        out.append(f"{where}: 'ratio' is given but 'peer_value' is null")
    if m["ratio"] is not None and m["peer_value"] is not None:
        num, den = (m["value"], m["peer_value"]) if ratio_of == RATIO_OF[0] else (m["peer_value"], m["value"])
        if den == 0:
            out.append(f"{where}: ratio {ratio_of} divides by zero")
        elif not ratio_matches(m["ratio"], num / den):
            out.append(f"{where}: ratio {m['ratio']} does not match {ratio_of} = {num}/{den} = {num / den:.4g}")
    if m["goal"] is None and m["met"] is not None:
        out.append(f"{where}: 'met' is {m['met']} but there is no goal (use null)")
    if m["goal"] is not None:
        on, figure = ("ratio", m["ratio"]) if m["ratio"] is not None else ("value", m["value"])
        expected = goal_met(m["goal"], figure)
        if m["met"] is None:
            out.append(f"{where}: goal {m['goal']!r} is given but 'met' is null (it is {expected} for {on} {figure})")
        elif m["met"] != expected:
            out.append(f"{where}: 'met' is {m['met']} but {on} {figure} {m['goal']} is {expected}")
    return out


def validate_record(record: Any, stem: str | None = None) -> list[str]:
    """Problems of an in-memory record (empty list when fine); ``stem``: the file stem ``name`` must equal."""
    if not isinstance(record, dict):
        return [f"a record must be a mapping, got {type(record).__name__}"]
    out = [f"missing key {k!r}" for k in REQUIRED_KEYS if k not in record]
    allowed = REQUIRED_KEYS + OPTIONAL_KEYS
    out += [f"unknown top-level key {k!r} (allowed: {', '.join(allowed)}; put tables under 'details')"
            for k in record if k not in allowed]
    name = record.get("name")
    if "name" in record:
        if not isinstance(name, str) or not name:
            out.append(f"'name' must be a non-empty string, got {name!r}")
        elif stem is not None and name != stem:
            out.append(f"'name' is {name!r} but the file is {stem}.yaml (name = file stem = bench script stem)")
    for k in ("command", "machine"):
        if k in record and (not isinstance(record[k], str) or not record[k].strip()):
            out.append(f"{k!r} must be a non-empty string, got {record[k]!r}")
    if "machine_load" in record:
        ml = record["machine_load"]
        if not (_is_number(ml) or (isinstance(ml, str) and ml.strip())):
            out.append(f"'machine_load' must be a number (1-minute load average) or a string "
                       f"(e.g. 'idle', {NOT_RECORDED!r}), got {ml!r}")
    if "date" in record:
        d = record["date"]
        if not (isinstance(d, _dt.date) and not isinstance(d, _dt.datetime)) and not (
                isinstance(d, str) and _DATE.match(d)):
            out.append(f"'date' must be YYYY-MM-DD, got {d!r}")
    if "notes" in record and not isinstance(record["notes"], str):
        out.append(f"'notes' must be a string, got {type(record['notes']).__name__}")
    if "details" in record and not isinstance(record["details"], dict):
        out.append(f"'details' must be a mapping, got {type(record['details']).__name__}")
    if "metrics" in record:
        ms = record["metrics"]
        if not isinstance(ms, list) or not ms:
            out.append("'metrics' must be a non-empty list")
        else:
            seen: set[str] = set()
            for i, m in enumerate(ms):
                out += _check_metric(i, m)
                if isinstance(m, dict) and isinstance(m.get("metric"), str):
                    if m["metric"] in seen:
                        out.append(f"metrics[{i}]: duplicate metric name {m['metric']!r}")
                    seen.add(m["metric"])
    return out


def validate(path: str | Path) -> list[str]:
    """Problems of the record in ``path`` (empty list when fine)."""
    p = Path(path)
    try:
        record = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        return [f"cannot read: {e}"]
    except yaml.YAMLError as e:
        return [f"invalid YAML: {e}"]
    return validate_record(record, stem=p.stem)


def load(path: str | Path) -> Record:
    """Read a record; raises ``RecordError`` listing every problem when it does not follow the schema."""
    p = Path(path)
    problems = validate(p)
    if problems:
        raise RecordError(str(p), problems)
    record = yaml.safe_load(p.read_text(encoding="utf-8"))
    if isinstance(record["date"], _dt.date):
        record["date"] = record["date"].isoformat()
    return record


def write(path: str | Path, record: Record) -> Path:
    """Validate ``record`` against the schema (``name`` must be the file stem) and write it as YAML."""
    p = Path(path)
    problems = validate_record(record, stem=p.stem)
    if problems:
        raise RecordError(str(p), problems)
    ordered = {k: record[k] for k in REQUIRED_KEYS + OPTIONAL_KEYS if k in record}
    ordered["metrics"] = [{k: m[k] for k in METRIC_KEYS + METRIC_OPTIONAL_KEYS if k in m} for m in record["metrics"]]
    if isinstance(ordered["date"], _dt.date):
        ordered["date"] = ordered["date"].isoformat()
    ordered = json.loads(json.dumps(ordered, default=str))  # tuples, numpy scalars etc. as plain YAML
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.dump(ordered, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110), encoding="utf-8")
    return p


# -- helpers for bench scripts ------------------------------------------------------------------

def out_path(out: str | None, script: str) -> Path | None:
    """Where ``--out`` writes the record of bench ``script``: ``<name>.yaml``, or that name inside a directory.

    Raises ValueError (call it right after argument parsing) when the file would not be named after the script.
    """
    if out is None:
        return None
    name = Path(script).stem
    p = Path(out)
    if p.is_dir() or out.endswith("/"):
        p = p / f"{name}.yaml"
    if p.stem != name or p.suffix not in (".yaml", ".yml"):
        raise ValueError(f"--out {out}: the record of {name} must be a file named {name}.yaml (or give a directory)")
    return p


def machine_load() -> float | str:
    """The 1-minute load average now (call at the start of a run), or 'not recorded' where unavailable."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return NOT_RECORDED


def machine(extra: str = "") -> str:
    """'N CPU cores, GPU ...' for this machine, without importing torch (uses it only if already loaded)."""
    gpu = "GPU not checked"
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                gpu = "GPU " + ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            else:
                gpu = "no GPU"
        except Exception:  # noqa: BLE001 - a description must never fail a benchmark
            pass
    parts = [f"{os.cpu_count()} CPU cores", gpu]
    if extra:
        parts.append(extra)
    return ", ".join(parts)


def command_line(argv: list[str] | None = None) -> str:
    """The command line that reproduces this run: environment knobs that change figures + python + argv."""
    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).parent.name == "bench":  # bench scripts run from the repository root
        argv[0] = f"bench/{Path(argv[0]).name}"
    env = [f"{k}={shlex.quote(os.environ[k])}" for k in
           ("KIRA_THREADS", "OMP_NUM_THREADS", "HF_HUB_OFFLINE", "TRANSFORMERS_VERBOSITY") if k in os.environ]
    return " ".join([*env, ".venv/bin/python", *(shlex.quote(a) for a in argv)])


def metric(name: str, value: float, peer: str | None = None, peer_value: float | None = None,
           ratio: float | None = None, goal: str | None = None, *, digits: int = 3,
           ratio_of: str | None = None) -> Metric:
    """One metrics entry; ``ratio`` (value / peer_value) and ``met`` are computed when not given."""
    if ratio is None and peer_value not in (None, 0):
        ratio = value / peer_value if ratio_of in (None, RATIO_OF[0]) else peer_value / value
    if ratio is not None:
        ratio = round(float(ratio), digits)
    met = None
    if goal is not None:
        met = goal_met(goal, ratio if ratio is not None else value)
    m: Metric = {"metric": name, "value": value, "peer": peer, "peer_value": peer_value, "ratio": ratio,
                 "goal": goal, "met": met}
    if ratio_of is not None:
        m["ratio_of"] = ratio_of
    return m


def record(script: str, metrics: list[Metric], *, load: float | str, details: dict[str, Any] | None = None,
           notes: str | None = None, machine_desc: str | None = None, argv: list[str] | None = None) -> Record:
    """A full record for the bench script at path ``script`` (its stem is the name), dated today."""
    rec: Record = {"name": Path(script).stem, "command": command_line(argv),
                   "machine": machine_desc or machine(), "machine_load": load,
                   "date": _dt.date.today().isoformat(), "metrics": metrics}
    if notes:
        rec["notes"] = notes
    if details:
        rec["details"] = details
    return rec
