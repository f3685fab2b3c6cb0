"""Every knowledge-source type runs ``KnowledgeSourceContract``; every KB embedder runs
``KBEmbedderContract`` (small real files, real WordNet and PyKEEN data, tiny models)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kira.kb.registry import make_source
from kira.kb.testing import KBEmbedderContract, KnowledgeSourceContract


class TestTsvSource(KnowledgeSourceContract):
    @pytest.fixture
    def source(self, tmp_path):
        p = tmp_path / "geo.tsv"
        p.write_text("Vienna\tcapital_of\tAustria\nDanube\tflows_through\tVienna\ttest\n")
        return make_source("tsv", "geo", [str(p)])

    @pytest.fixture
    def bad_source(self, tmp_path):
        p = tmp_path / "bad.tsv"
        p.write_text("Vienna\tcapital_of\tAustria\nDanube\tflows_through\n")
        return make_source("tsv", "geo", [str(p)]), 2


class TestJsonlSource(KnowledgeSourceContract):
    @pytest.fixture
    def source(self, tmp_path):
        p = tmp_path / "geo.jsonl"
        rows = [{"type": "entity", "id": "vie", "name": "Vienna", "aliases": ["Wien"]},
                {"type": "entity", "id": "aut", "name": "Austria"},
                {"head": "vie", "relation": "capital_of", "tail": "aut"}]
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return make_source("jsonl", "geo", [str(p)])

    @pytest.fixture
    def bad_source(self, tmp_path):
        p = tmp_path / "bad.jsonl"
        p.write_text(json.dumps({"head": "vie", "relation": "capital_of", "tail": "aut"}) + "\n"
                     + json.dumps({"head": "vie", "relation": "", "tail": "aut"}) + "\n")
        return make_source("jsonl", "geo", [str(p)]), 2


class TestRdfSource(KnowledgeSourceContract):
    @pytest.fixture
    def source(self, tmp_path):
        p = tmp_path / "geo.nt"
        p.write_text("<http://x.org/Vienna> <http://x.org/capitalOf> <http://x.org/Austria> .\n")
        return make_source("rdf", "geo", [str(p)])

    @pytest.fixture
    def bad_source(self, tmp_path):
        p = tmp_path / "bad.nt"
        p.write_text("<http://x.org/Vienna> <http://x.org/capitalOf> <http://x.org/Austria> .\n"
                     "<http://x.org/Graz> <http://x.org/in> .\n")
        return make_source("rdf", "geo", [str(p)]), 2


class TestPykeenSource(KnowledgeSourceContract):
    @pytest.fixture
    def source(self):
        from kira.kb.sources import pykeen_dataset_dir

        return make_source("pykeen", "nations", [str(pykeen_dataset_dir("nations"))])

    @pytest.fixture
    def bad_source(self, tmp_path):
        from kira.kb.sources import pykeen_dataset_dir

        d = tmp_path / "nations"
        shutil.copytree(pykeen_dataset_dir("nations"), d)
        lines = (d / "train.txt").read_text().splitlines()
        lines[2] = lines[2].rsplit("\t", 1)[0]  # line 3 loses its tail
        (d / "train.txt").write_text("\n".join(lines) + "\n")
        return make_source("pykeen", "nations", [str(d)]), 3


class TestWordNetSource(KnowledgeSourceContract):
    @pytest.fixture(scope="class")
    def source(self):
        return make_source("wordnet", "wordnet", ["/usr/share/wordnet"], pos=("r",), relations=("\\", "!"))

    @pytest.fixture
    def bad_source(self, tmp_path):
        src = "/usr/share/wordnet/data.adv"
        lines = Path(src).read_text(encoding="utf-8").splitlines()
        first = next(i for i, x in enumerate(lines) if not x.startswith("  "))
        lines[first] = lines[first].split(" | ")[0].rsplit(" ", 3)[0] + " | broken"  # a truncated pointer list
        (tmp_path / "data.adv").write_text("\n".join(lines) + "\n")
        return make_source("wordnet", "wordnet", [str(tmp_path)], pos=("r",)), first + 1


class TestTransE(KBEmbedderContract):
    @pytest.fixture
    def embedder_factory(self):
        from kira.kb.embeddings import KGEmbedder

        return lambda: KGEmbedder("transe", dim=8, epochs=3, device="cpu")


class TestTransD(KBEmbedderContract):
    @pytest.fixture
    def embedder_factory(self):
        from kira.kb.embeddings import KGEmbedder

        return lambda: KGEmbedder("transd", dim=8, epochs=3, device="cpu")


class TestKepler(KBEmbedderContract):
    @pytest.fixture
    def embedder_factory(self):
        from kira.kb.kepler import Kepler

        return lambda: Kepler(encoder="tiny-bert", epochs=1, batch_size=4, device="cpu")
