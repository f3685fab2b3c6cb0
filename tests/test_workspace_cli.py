"""`kira models list` (types, formats, staleness) and `kira workspace upgrade` (snapshots for versions
built before they existed), on a real tiny workspace."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from kira.cli import app
from kira.config import load_config
from kira.index_build.incremental import update_index
from kira.kb.embeddings import KGEmbedder
from kira.kb.plugin import add_kb
from kira.kb.store import DuckDBStore
from kira.schema import Passage


def test_models_list_marks_stale_and_upgrade_adds_snapshots(workspace):
    (workspace / "kira.toml").write_text('[index]\nencoder = "tiny-bert"\n')
    cfg = load_config(workspace)
    (workspace / "geo.tsv").write_text("Danube\tflows_through\tVienna\nVienna\tcapital_of\tAustria\n")
    with DuckDBStore(cfg.store_path) as store:
        store.add_passages([Passage("t:1", "Vienna", "Vienna is a city on the Danube.", "t")])
        store.register_source("t", "text:jsonl")
        add_kb(store, "geo", "tsv", [str(workspace / "geo.tsv")])
        emb = KGEmbedder("transe", dim=8, epochs=2, device="cpu")
        emb.fit(list(store.iter_triples("geo")))
        emb.save(cfg.models_dir / "geo-transe", sources=[store.get_source("geo")])
        v = update_index(cfg, store, progress=False)
    runner = CliRunner()
    rows = json.loads(runner.invoke(app, ["models", "list", "-w", str(workspace), "--json"]).output)
    assert rows == [{**rows[0], "name": "geo-transe", "type": "kge", "format_version": 1, "stale": []}]
    (workspace / "geo.tsv").write_text("Danube\tflows_through\tBudapest\n")
    with DuckDBStore(cfg.store_path) as store:
        add_kb(store, "geo", "tsv", [str(workspace / "geo.tsv")])  # same file, new content: new version
    rows = json.loads(runner.invoke(app, ["models", "list", "-w", str(workspace), "--json"]).output)
    assert rows[0]["stale"] == ["geo"]

    v.snapshot_path.unlink()  # as if built by an older kira
    res = runner.invoke(app, ["workspace", "upgrade", "-w", str(workspace)])
    assert res.exit_code == 2 and "kira index build --full" in res.output  # the store moved on since
    with DuckDBStore(cfg.store_path) as store:
        v2 = update_index(cfg, store, progress=False, full=True)
    v2.snapshot_path.unlink()
    res = runner.invoke(app, ["workspace", "upgrade", "-w", str(workspace)])
    assert res.exit_code == 0 and "now has its store snapshot" in res.output and v2.snapshot_path.exists()


def test_upgrade_stamps_the_owning_kb_into_older_kb_artifacts(workspace):
    cfg = load_config(workspace)
    (workspace / "geo.tsv").write_text("Danube\tflows_through\tVienna\n")
    with DuckDBStore(cfg.store_path) as store:
        add_kb(store, "geo", "tsv", [str(workspace / "geo.tsv")])
    old = cfg.models_dir / "geo-transe"
    old.mkdir(parents=True)
    (old / "kira.json").write_text(json.dumps({"type": "kge", "format_version": 1}))  # before "kb" existed
    (cfg.models_dir / "geo-notes").mkdir()
    res = CliRunner().invoke(app, ["workspace", "upgrade", "-w", str(workspace)])
    assert res.exit_code == 0 and "1 KB artifact(s) now name their KB" in res.output
    assert json.loads((old / "kira.json").read_text())["kb"] == "geo"
    from kira.artifacts import kb_artifact_dirs

    assert kb_artifact_dirs(cfg.models_dir, "geo") == [old]


def test_index_option_means_the_same_in_every_command_line(workspace):
    """``--index`` names a workspace, its indexes/ or one version: readers use that version, writers
    its workspace; ``kira index remove`` is the verb (``delete`` still works, hidden)."""
    from kira.clikit import workspace_for

    (workspace / "kira.toml").write_text('[index]\nencoder = "tiny-bert"\n')
    cfg = load_config(workspace)
    with DuckDBStore(cfg.store_path) as store:
        store.add_passages([Passage("t:1", "Vienna", "Vienna is a city on the Danube.", "t"),
                            Passage("t:2", "Graz", "Graz is a city on the Mur.", "t")])
        store.register_source("t", "text:jsonl")
        v = update_index(cfg, store, progress=False)
    for given in (workspace, workspace / "indexes", v.path):
        assert workspace_for(str(given)) == workspace.resolve()
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["index", "list", "--index", str(v.path), "--json"]).output)
    assert any(row["version"] == v.name for row in listed["versions"])
    res = runner.invoke(app, ["retriever", "search", "Danube", "--index", str(v.path), "--method", "bm25",
                              "--k", "1", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["hits"][0]["id"] == "t:1"
    res = runner.invoke(app, ["index", "remove", "--index", str(v.path), "--id", "t:2", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["deleted"] == 1
    res = CliRunner().invoke(app, ["index", "delete", "-w", str(workspace), "--id", "t:1", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["deleted"] == 1
    assert "`kira index delete` is now `kira index remove`" in res.stderr
