"""Packaging: the wheel holds only kira/..., the CLI frame works, config defaults and errors."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kira.config import load_config
from kira.errors import KiraError

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_only_kira(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("kira-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"kira", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    for sub in ("retriever", "reader", "kb", "tables", "graph", "index_build", "serve", "plm"):
        assert f"kira/{sub}/__init__.py" in names
    assert not any(n.startswith(("kira/tests/", "kira/bench/", "kira/.venv")) for n in names)


def test_no_folder_importable_as_top_level_module():
    # `tables` must resolve to PyTables (or nothing), never to kira's folder
    code = "import importlib.util as u; s = u.find_spec('tables'); print(s.origin if s else None)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/").stdout
    assert str(ROOT) not in out


def test_config_defaults_without_file(tmp_path):
    cfg = load_config(tmp_path)
    assert cfg.index.encoder == "minilm-l6" and cfg.store_path == tmp_path / "store.duckdb"


def test_config_rejects_unknown_keys(tmp_path):
    (tmp_path / "kira.toml").write_text("[index]\nencodr = 'x'\n")
    with pytest.raises(KiraError, match="encodr"):
        load_config(tmp_path)


def test_config_file_and_env_override(tmp_path, monkeypatch):
    (tmp_path / "kira.toml").write_text("[retriever]\nk = 7\n[serve]\nport = 9000\n")
    monkeypatch.setenv("KIRA_ADMIN_TOKEN", "s3cret")
    cfg = load_config(tmp_path)
    assert cfg.retriever.k == 7 and cfg.serve.port == 9000 and cfg.serve.admin_token == "s3cret"


def test_cli_help_and_init(tmp_path):
    out = subprocess.run([sys.executable, "-m", "kira", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "ask" in out.stdout
    ws = tmp_path / "ws"
    out = subprocess.run([sys.executable, "-m", "kira", "init", "--workspace", str(ws)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (ws / "kira.toml").exists()
    assert load_config(ws).index.faiss_type == "auto"  # the commented file parses to defaults
