"""Knowledge injected into the reader: gates at zero reproduce the base reader exactly, fusion
changes it once learned, WKLM keeps entity types, K-Adapters load and unload with their KB, and
the entity-answer head answers from the KB embedder (tiny models, a small TSV KB)."""

from __future__ import annotations

import random

import pytest
import torch

from kira.artifacts import kb_artifact_dirs
from kira.kb.embeddings import KGEmbedder
from kira.kb.linking import EntityLinker
from kira.kb.plugin import add_kb, remove_kb
from kira.reader.extractive import ExtractiveReader, ReaderExample
from kira.reader.knowledge import EntityTable, KnowledgeBatch
from kira.reader.knowledge_reader import KBAnswerer, KnowledgeReader, load_adapter_artifact, save_adapter
from kira.reader.knowledge_train import entity_types, finetune, replace_mentions, train_adapter, wklm_pretrain
from kira.reader.questions import questions_from_kb
from kira.reader.testing import ReaderContract
from kira.schema import Evidence

FACTS = [("paris", "capital_of", "france"), ("berlin", "capital_of", "germany"), ("rome", "capital_of", "italy"),
         ("madrid", "capital_of", "spain"), ("france", "isa", "country"), ("germany", "isa", "country"),
         ("italy", "isa", "country"), ("spain", "isa", "country"), ("paris", "isa", "city"),
         ("berlin", "isa", "city"), ("rome", "isa", "city"), ("madrid", "isa", "city"),
         ("france", "borders", "spain"), ("france", "borders", "germany"), ("germany", "borders", "france")]


@pytest.fixture
def geo(store, tmp_path):
    (tmp_path / "facts.tsv").write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in FACTS))
    add_kb(store, "geo", "tsv", [str(tmp_path / "facts.tsv")])
    return store


@pytest.fixture
def embedder(geo):
    emb = KGEmbedder("transe", dim=16, epochs=30, device="cpu", seed=0)
    emb.fit(list(geo.iter_triples("geo")))
    return emb


def _table(embedder) -> EntityTable:
    table = EntityTable.empty(16)
    table.add_embedder("geo", embedder)
    return table


def _evidence() -> list[Evidence]:
    return [Evidence(id="p1", title="Paris", text="Paris is the capital of France and borders nothing.", score=1.0),
            Evidence(id="p2", title="Berlin", text="Berlin is the capital of Germany.", score=0.5)]


QUESTIONS = ["What is Paris the capital of?", "Which country is Berlin in?"]


def _logits(reader, questions=QUESTIONS):
    pairs = [reader.pair(q, e.title, e.text)[0] for q in questions for e in _evidence()]
    windows = reader.windows(pairs)
    with torch.inference_mode():
        return windows, reader.forward_windows(windows, list(range(len(windows))))


@pytest.mark.parametrize("fusion", ["ernie", "kar", None])
def test_zero_gate_is_exactly_the_base_reader(geo, embedder, fusion):
    torch.manual_seed(0)
    base = ExtractiveReader.load("tiny-bert", device="cpu", title_in_passage=True)
    _, want = _logits(base)
    know = KnowledgeReader.wrap(base, _table(embedder), EntityLinker(geo), fusion=fusion, layer=0)
    know.add_adapter("geo", train_adapter_module(know))
    windows, got = _logits(know)
    assert any(windows.mentions)  # knowledge did reach the injector ...
    for a, b in zip(want, got, strict=True):  # ... and changed nothing while its gates are zero
        assert torch.equal(a, b)
    if fusion:
        know.injector.fusion.gate.data.fill_(0.5)
        _, moved = _logits(know)
        assert not torch.allclose(want[0], moved[0])


def train_adapter_module(reader):
    from kira.reader.knowledge import KAdapter

    return KAdapter(reader.model.qa.config.hidden_size, 3, 8)


def test_linked_windows_point_at_the_mention_tokens(geo, embedder):
    reader = KnowledgeReader.wrap(ExtractiveReader.load("tiny-bert", device="cpu"), _table(embedder),
                                  EntityLinker(geo), fusion="kar")
    question, passage = "Is Berlin big?", "Berlin is the capital of Germany."
    w = reader.windows([(question, "", passage)])
    toks = reader.tokenizer.convert_ids_to_tokens(w.input_ids[0])
    surfaces = {"".join(t.removeprefix("##") for t in toks[s:e + 1]) for s, e, _, _ in w.mentions[0]}
    assert {"berlin", "germany"} <= surfaces
    rows = {tuple(r) for _, _, r, _ in w.mentions[0]}
    assert (reader.injector.table.rows[("geo", "germany")],) in rows


def test_kar_attends_over_candidates_with_priors():
    from kira.reader.knowledge import KARLayer

    torch.manual_seed(0)
    layer = KARLayer(8, 4, heads=2)
    table = torch.cat([torch.zeros(1, 4), torch.eye(4)])
    kb = KnowledgeBatch.build([[(1, 2, [1, 2], [0.9, 0.1])], []])
    h = torch.randn(2, 5, 8)
    out = layer(h, table, kb)
    assert torch.equal(out, h)  # gate zero
    layer.gate.data.fill_(1.0)
    out = layer(h, table, kb)
    assert torch.equal(out[1], h[1])  # a row without mentions is never touched
    assert not torch.allclose(out[0], h[0])
    assert layer.last_link_logits[0, 0, 0] > layer.last_link_logits[0, 0, 1] - 10  # both candidates scored


def test_wklm_replacements_keep_the_entity_type(geo):
    types = {("geo", e): t for e, t in entity_types(geo, "geo").items()}
    assert types[("geo", "paris")] == "city" and types[("geo", "spain")] == "country"
    by_type: dict[str, list] = {}
    for k, t in types.items():
        by_type.setdefault(t, []).append(k)
    names = {("geo", e.id): e.name for e in geo.iter_entities("geo")}
    inverse = {v: k for k, v in names.items()}
    linker = EntityLinker(geo)
    text = "paris lies in france, far from rome and spain"
    rng = random.Random(0)
    seen_replaced = 0
    for _ in range(20):
        new, labels = replace_mentions(text, linker.candidate_mentions(text, 1), types, by_type, names, rng, p=0.7)
        originals = [m.candidates[0] for m in linker.candidate_mentions(text, 1)]
        assert len(labels) == len(originals)
        for (a, b, replaced), orig in zip(labels, originals, strict=True):
            now = inverse[new[a:b]]
            assert types[now] == types[orig]  # same type, whether replaced or not
            assert (now != orig) == bool(replaced)
            seen_replaced += replaced
    assert seen_replaced > 0


def test_wklm_and_finetune_train_the_knowledge_reader(geo, embedder):
    torch.manual_seed(0)
    reader = KnowledgeReader.wrap(ExtractiveReader.load("tiny-bert", device="cpu"), _table(embedder),
                                  EntityLinker(geo), fusion="ernie")
    res = wklm_pretrain(reader, geo, ["geo"], ["Paris is the capital of France.", "Rome borders Spain."],
                        EntityLinker(geo), steps=3, batch_size=2)
    assert res["steps"] == 3 and res["n_typed_entities"] == 8
    ex = [ReaderExample(q, [(e.title, e.text) for e in _evidence()], [a], [i])
          for q, a, i in [(QUESTIONS[0], "France", 0), (QUESTIONS[1], "Germany", 1)]]
    res = finetune(reader, ex, steps=4, batch_size=2)
    assert float(reader.injector.fusion.gate.detach().abs().sum()) > 0  # the gate learned to open


def test_adapter_saved_with_its_kb_loaded_when_present_removed_with_it(geo, embedder, tmp_path):
    models = tmp_path / "models"
    emb_dir = embedder.save(models / "geo-transe")
    torch.manual_seed(0)
    reader = KnowledgeReader.wrap(ExtractiveReader.load("tiny-bert", device="cpu"), _table(embedder),
                                  EntityLinker(geo), fusion=None)
    records = questions_from_kb(geo, "geo", heldout=0.0)
    adapter, head, relations, res = train_adapter(reader, geo, "geo", embedder, records, steps=3, batch_size=4)
    assert res["steps"] == 3 and relations == embedder.vocab.relations
    d = save_adapter(models, "geo", adapter, head, relations, emb_dir, {"steps": 3}, geo.list_sources())
    art = load_adapter_artifact(d)
    assert art["kb"] == "geo" and torch.equal(art["adapter"].up.weight, adapter.up.weight)
    torch.manual_seed(1)
    fresh = KnowledgeReader.wrap(ExtractiveReader.load("tiny-bert", device="cpu"), EntityTable.empty(16),
                                 EntityLinker(geo))
    _, before = _logits(fresh)
    assert fresh.load_adapters(models, ["other"]) == []
    assert fresh.load_adapters(models, ["geo"], store=geo) == ["geo"]
    assert "geo" in fresh.injector.adapters and ("geo", "paris") in fresh.injector.table.rows
    _, after = _logits(fresh)  # a trained adapter sits beside the span reader (K-Adapter), never in it
    assert all(torch.equal(x, y) for x, y in zip(before, after, strict=True))
    answers = fresh.read_batch(["What is Paris the capital of?"], [_evidence()], allow_no_answer=False)
    assert answers[0] and answers[0][0].text
    # the entity head ranks KB entities (never evidence pasted from link prediction)
    cands, probs, rel_conf = fresh.entity_answer_probs(fresh.answerers["geo"], "What is Paris the capital of?",
                                             fresh.question_states(["What is Paris the capital of?"])[0])
    assert "paris" not in cands and abs(float(probs.detach().sum()) - 1) < 1e-4 and 0 < rel_conf <= 1
    fresh.remove_kb("geo")
    assert "geo" not in fresh.injector.adapters and ("geo", "paris") not in fresh.injector.table.rows
    assert [p.name for p in kb_artifact_dirs(models, "geo")] == ["geo-adapter", "geo-transe"]
    remove_kb(geo, "geo", models_dir=models)
    assert kb_artifact_dirs(models, "geo") == [] and not d.exists()


def test_kb_add_adapter_is_loaded_at_ask_time_and_removed_with_the_kb(workspace, tmp_path):
    import json

    from typer.testing import CliRunner

    from kira.artifacts import role_dir
    from kira.cli import app
    from kira.config import load_config
    from kira.pipeline import QAPipeline

    cfg = load_config(workspace)
    torch.manual_seed(0)
    ExtractiveReader.load("tiny-bert", device="cpu").save(role_dir(cfg.models_dir, "reader-extractive"))
    (tmp_path / "facts.tsv").write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in FACTS))
    res = CliRunner().invoke(app, ["kb", "add", "geo", str(tmp_path / "facts.tsv"), "--adapter",
                                   "--adapter-steps", "2", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])  # progress bars go to stderr
    assert out["adapter"]["steps"] == 2 and out["adapter"]["adapter_seconds"] >= 0
    assert sorted(p.name for p in kb_artifact_dirs(cfg.models_dir, "geo")) == ["geo-adapter", "geo-transe"]
    reader = QAPipeline.from_config(cfg).reader("extractive")
    assert isinstance(reader, KnowledgeReader) and list(reader.injector.adapters) == ["geo"]
    got = reader.read_batch(["What is Paris the capital of?"], [_evidence()], allow_no_answer=False)
    assert got[0] and got[0][0].text
    res = CliRunner().invoke(app, ["kb", "remove", "geo"])
    assert res.exit_code == 0, res.output
    assert kb_artifact_dirs(cfg.models_dir, "geo") == []
    plain = QAPipeline.from_config(load_config(workspace)).reader("extractive")
    assert not isinstance(plain, KnowledgeReader)


class TestKnowledgeReaderContract(ReaderContract):
    """The knowledge reader with KAR fusion and a KB's adapter and entity head is still a Reader."""

    @pytest.fixture(scope="class")
    def reader(self, tmp_path_factory):
        from kira.kb.store import DuckDBStore

        d = tmp_path_factory.mktemp("kb")
        store = DuckDBStore(str(d / "store.duckdb"))
        (d / "facts.tsv").write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in FACTS))
        add_kb(store, "geo", "tsv", [str(d / "facts.tsv")])
        emb = KGEmbedder("transe", dim=16, epochs=30, device="cpu", seed=0)
        emb.fit(list(store.iter_triples("geo")))
        torch.manual_seed(0)
        know = KnowledgeReader.wrap(ExtractiveReader.load("tiny-bert", device="cpu", max_length=48, stride=16,
                                                          max_query_tokens=16), _table(emb), EntityLinker(store),
                                    fusion="kar")
        know.injector.fusion.gate.data.fill_(0.3)
        adapter, head, relations, _ = train_adapter(know, store, "geo", emb, questions_from_kb(store, "geo"),
                                                    steps=2, batch_size=4)
        know.answerers["geo"] = KBAnswerer("geo", emb, adapter, head, relations, store)
        return know

    @pytest.fixture
    def cases(self):
        return [(q, _evidence()) for q in QUESTIONS] + [("Which city is the capital of Spain?", _evidence()[:1])]
