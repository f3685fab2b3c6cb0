"""bench/regressions/*.yaml follow one schema (kira.benchmarks); broken records are rejected clearly."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kira import benchmarks

ROOT = Path(__file__).resolve().parents[1]
REGRESSIONS = sorted((ROOT / "bench" / "regressions").glob("*.yaml"))

GOOD = {
    "name": "plm_encode",
    "command": "HF_HUB_OFFLINE=1 .venv/bin/python bench/plm_encode.py --n 10000",
    "machine": "2 CPU cores, no GPU",
    "machine_load": 0.42,
    "date": "2026-11-28",
    "metrics": [
        {"metric": "passages/s", "value": 479.4, "peer": "sentence-transformers", "peer_value": 219.2,
         "ratio": 2.19, "goal": ">= 2.0", "met": True},
        {"metric": "cosine min", "value": 0.99997, "peer": None, "peer_value": None, "ratio": None,
         "goal": ">= 0.999", "met": True},
        {"metric": "ms per target", "value": 70.19, "peer": "networkx", "peer_value": 1075.7, "ratio": 15.3,
         "ratio_of": "peer_value / value", "goal": None, "met": None},
    ],
    "details": {"cosine_mean": 0.99999},
}


def test_there_are_records():
    assert len(REGRESSIONS) >= 10


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda p: p.name)
def test_every_regression_file_follows_the_schema(path):
    assert benchmarks.validate(path) == []
    assert (ROOT / "bench" / f"{path.stem}.py").is_file(), f"no bench script bench/{path.stem}.py for {path.name}"
    rec = benchmarks.load(path)
    assert rec["name"] == path.stem and isinstance(rec["date"], str)


def test_good_record_round_trips(tmp_path):
    p = benchmarks.write(tmp_path / "plm_encode.yaml", GOOD)
    assert benchmarks.validate(p) == []
    assert benchmarks.load(p) == GOOD


def _broken(tmp_path, stem="plm_encode", **edit):
    rec = copy.deepcopy(GOOD)
    for key, value in edit.items():
        if key.startswith("m0_"):
            rec["metrics"][0][key[3:]] = value
        elif value is None:
            rec.pop(key)
        else:
            rec[key] = value
    p = tmp_path / f"{stem}.yaml"
    p.write_text(yaml.safe_dump(rec, sort_keys=False))
    return benchmarks.validate(p)


def test_missing_key_is_named(tmp_path):
    assert _broken(tmp_path, machine_load=None) == ["missing key 'machine_load'"]


def test_missing_metric_key_is_named(tmp_path):
    rec = copy.deepcopy(GOOD)
    del rec["metrics"][0]["peer_value"]
    assert benchmarks.validate_record(rec, "plm_encode") == ["metrics[0] ('passages/s'): missing key 'peer_value'"]


def test_ratio_must_match_value_over_peer_value(tmp_path):
    (problem,) = _broken(tmp_path, m0_ratio=3.5, m0_met=True)
    assert "ratio 3.5 does not match value / peer_value = 479.4/219.2" in problem


def test_ratio_of_turns_the_ratio_round(tmp_path):
    rec = copy.deepcopy(GOOD)
    del rec["metrics"][2]["ratio_of"]
    (problem,) = benchmarks.validate_record(rec, "plm_encode")
    assert "ratio 15.3 does not match value / peer_value" in problem


def test_goal_and_met_must_agree(tmp_path):
    (problem,) = _broken(tmp_path, m0_met=False)
    assert problem == "metrics[0] ('passages/s'): 'met' is False but ratio 2.19 >= 2.0 is True"
    (problem,) = _broken(tmp_path, m0_met=None)
    assert "goal '>= 2.0' is given but 'met' is null" in problem
    (problem,) = _broken(tmp_path, m0_goal=None)
    assert "'met' is True but there is no goal" in problem


def test_name_must_match_file_stem(tmp_path):
    (problem,) = _broken(tmp_path, stem="retrieval_qps")
    assert problem == "'name' is 'plm_encode' but the file is retrieval_qps.yaml (name = file stem = bench script stem)"


def test_other_problems_are_reported(tmp_path):
    problems = _broken(tmp_path, date="28.11.2026", results={"a": 1}, m0_goal="at least 2")
    assert "'date' must be YYYY-MM-DD, got '28.11.2026'" in problems
    assert any(p.startswith("unknown top-level key 'results'") for p in problems)
    assert any("'goal' must be null or a string like '>= 2.0'" in p for p in problems)


def test_write_refuses_a_broken_record(tmp_path):
    rec = copy.deepcopy(GOOD)
    rec["metrics"][0]["met"] = False
    with pytest.raises(benchmarks.RecordError, match="'met' is False"):
        benchmarks.write(tmp_path / "plm_encode.yaml", rec)
    assert not (tmp_path / "plm_encode.yaml").exists()


def test_load_raises_with_every_problem(tmp_path):
    _broken(tmp_path, machine=None, command=None)
    with pytest.raises(benchmarks.RecordError, match="missing key 'command'; missing key 'machine'"):
        benchmarks.load(tmp_path / "plm_encode.yaml")


def test_helpers_build_a_valid_record(tmp_path):
    m = benchmarks.metric("q/s", 16.2, "faiss", 17.2, goal=">= 0.9")
    assert m["ratio"] == 0.942 and m["met"] is True
    rec = benchmarks.record("bench/retrieval_qps.py", [m], load=benchmarks.machine_load(),
                            argv=["bench/retrieval_qps.py", "--queries", "300"])
    assert rec["name"] == "retrieval_qps" and "bench/retrieval_qps.py --queries 300" in rec["command"]
    benchmarks.write(tmp_path / "retrieval_qps.yaml", rec)
    assert benchmarks.validate(tmp_path / "retrieval_qps.yaml") == []


def test_import_is_light():
    code = "import sys, kira.benchmarks; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


BENCH_SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if p.stem != "pydoc_corpus")


@pytest.mark.parametrize("script", BENCH_SCRIPTS, ids=lambda p: p.name)
def test_every_bench_script_writes_its_record_through_the_shared_writer(script):
    src = script.read_text()
    assert '"--out"' in src and "benchmarks.out_path(" in src and "benchmarks.write(" in src
    assert "machine_load()" in src or "getloadavg()" in src
