"""Real-process probes: every command here runs as `python -m kira …` in a fresh interpreter (its own
JVM, its own DuckDB connection), the server is a real uvicorn process on a loopback port.

WHY fresh processes: the bugs these tests guard against (a Java class looked up before Lucene is on
the classpath, DuckDB's one-writer file lock, a traceback instead of a one-line error) only show
when each command starts from nothing, as a user's commands do.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

TOML = """\
[index]
encoder = "tiny-bert"
batch_size = 16

[reader]
extractive = "tiny-bert"
fid = "tiny-t5"
k = 4

[serve]
watch_interval_s = 0.2
allowed_kb_dirs = ["{kb_dir}"]
"""

GEO = ("Danube\tflows_through\tVienna\nDanube\tflows_through\tBudapest\nRhine\tflows_through\tBasel\n"
       "Vienna\tcapital_of\tAustria\nBudapest\tcapital_of\tHungary\n")


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        """stderr without the JVM's and libraries' own chatter."""
        noise = ("WARNING", "INFO", "SLF4J", "Dec ", "Jan ", "org.apache", "bm25:", "faiss:", "encode",
                 "lucene:", "  warnings.warn", "UserWarning")
        return [ln for ln in self.err.splitlines() if ln.strip() and not any(n in ln for n in noise)
                and "%|" not in ln]


def env_for(ws: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false",
                "KIRA_WORKSPACE": str(ws), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def kira(ws: Path, *args: str, timeout: float = 180, **env: str) -> Result:
    p = subprocess.run([sys.executable, "-m", "kira", *args], capture_output=True, text=True,
                       timeout=timeout, env=env_for(ws, **env), cwd=ws.parent)
    return Result(p.returncode, p.stdout, p.stderr)


def start_kira(ws: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kira", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env_for(ws, **env), cwd=ws.parent)


def assert_clean_error(r: Result, *needles: str) -> None:
    """Exit 2 with one short error line: no traceback, and every needle in it."""
    assert r.rc == 2, (r.rc, r.out, r.err)
    assert "Traceback" not in r.err, r.err
    lines = r.error_lines
    assert len(lines) == 1 and lines[0].startswith("kira: error:"), lines
    for n in needles:
        assert n in lines[0], (n, lines[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def base_ws(tmp_path_factory) -> Path:
    """A workspace with a 12-document text source ``docs``, a KB ``geo`` and one built version."""
    root = tmp_path_factory.mktemp("rel")
    ws = root / "ws"
    ws.mkdir()
    kb_dir = root / "kbs"
    kb_dir.mkdir()
    (kb_dir / "geo.tsv").write_text(GEO)
    (ws / "kira.toml").write_text(TOML.format(kb_dir=kb_dir))
    with (root / "docs.jsonl").open("w") as f:
        for i in range(12):
            f.write(json.dumps({"id": f"d{i}", "title": f"Doc {i}", "text": f"document {i} about river {i % 3}"}) + "\n")
    r = kira(ws, "index", "build", "--source", f"jsonl:{root / 'docs.jsonl'}", "--name", "docs", "--json")
    assert r.rc == 0, r.err
    r = kira(ws, "kb", "add", "geo", str(kb_dir / "geo.tsv"), "--json")
    assert r.rc == 0, r.err
    return ws


@pytest.fixture
def ws(base_ws, tmp_path) -> Path:
    """A private copy of the base workspace (same parent layout, so its paths stay valid)."""
    import shutil

    dst = tmp_path / "ws"
    shutil.copytree(base_ws, dst, symlinks=True, ignore=shutil.ignore_patterns(".kira.lock", ".kira-holders"))
    shutil.copytree(base_ws.parent / "kbs", tmp_path / "kbs")
    shutil.copy(base_ws.parent / "docs.jsonl", tmp_path / "docs.jsonl")
    return dst


def store_counts(ws: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(ws / "store.duckdb"), read_only=True)
    try:
        return dict(con.execute("SELECT source, count(*) FROM passages GROUP BY source").fetchall())
    finally:
        con.close()


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError("server not ready in time")


@pytest.fixture(scope="session")
def probe():
    """The helpers above, for test modules (pytest's importlib mode cannot import a conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(kira=kira, start=start_kira, clean=assert_clean_error, counts=store_counts,
                           free_port=free_port, wait_ready=wait_ready, env=env_for)
