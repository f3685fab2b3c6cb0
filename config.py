"""Workspace configuration: one TOML file (``kira.toml``), every key has a default.

A workspace is a directory holding ``kira.toml``, ``store.duckdb``, ``indexes/`` and ``models/``.
Its location comes from ``--workspace``, else ``$KIRA_WORKSPACE``, else ``./workspace``.
Sections of the TOML map onto the nested models below; unknown keys are an error so typos surface.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from kira.errors import KiraError

DEFAULT_ENCODER = "minilm-l6"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IndexConfig(_Section):
    encoder: str = DEFAULT_ENCODER
    query_encoder: str | None = None  # DPR with separate question encoder; None = shared
    faiss_type: str = "auto"  # auto | flat | hnsw | ivf-flat | ivf-pq
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    passage_words: int = 100
    passage_overlap: int = 0
    shard_size: int = 8192
    batch_size: int = 64
    keep_versions: int = 3


class IngestConfig(_Section):
    max_chars: int = 100_000  # a longer document is a line-numbered error, not a build that fails later


class RetrieverConfig(_Section):
    default_method: str = "hybrid"  # bm25 | dense | hybrid
    k: int = 100
    fusion: str = "rrf"  # rrf | linear
    alpha: float = 0.5
    rrf_k: int = 60


class ReaderConfig(_Section):
    extractive: str | None = None  # model spec or artifact dir; None = workspace default models/reader-extractive
    fid: str | None = None
    k: int = 10
    no_answer_threshold: float | None = None
    kb_answer_types: bool = True  # weigh answers by agreement with the asked type, from the KBs' classes


class ServeConfig(_Section):
    host: str = "127.0.0.1"
    port: int = 8000
    admin_token: str | None = None
    api_key: str | None = None
    allowed_kb_dirs: list[str] = Field(default_factory=list)
    cors_origins: list[str] = Field(default_factory=list)
    max_question_chars: int = 1000
    max_k: int = 200
    max_body_bytes: int = 1_000_000
    max_upload_bytes: int = 200_000_000
    request_timeout_s: float = 60.0
    max_batch: int = 16
    max_wait_ms: float = 5.0
    watch_interval_s: float = 2.0  # poll indexes/current for versions published by others; 0 = off


class KiraConfig(_Section):
    workspace: Path = Path("workspace")
    device: str = "auto"  # auto | cpu | cuda
    bf16: bool = True
    index: IndexConfig = Field(default_factory=IndexConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    retriever: RetrieverConfig = Field(default_factory=RetrieverConfig)
    reader: ReaderConfig = Field(default_factory=ReaderConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)

    # ---- workspace layout -------------------------------------------------------------------
    @property
    def store_path(self) -> Path:
        return self.workspace / "store.duckdb"

    @property
    def indexes_dir(self) -> Path:
        return self.workspace / "indexes"

    @property
    def models_dir(self) -> Path:
        return self.workspace / "models"


def workspace_path(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get("KIRA_WORKSPACE") or "workspace").resolve()


def load_config(workspace: str | os.PathLike | None = None) -> KiraConfig:
    """Read ``<workspace>/kira.toml`` if it exists; defaults otherwise. Env overrides secrets."""
    ws = workspace_path(workspace)
    data: dict = {}
    toml_path = ws / "kira.toml"
    if toml_path.exists():
        try:
            data = tomllib.loads(toml_path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise KiraError(f"{toml_path}: {e}") from e
    data["workspace"] = ws
    try:
        cfg = KiraConfig.model_validate(data)
    except Exception as e:  # pydantic's message names the key
        raise KiraError(f"{toml_path}: {e}") from e
    if tok := os.environ.get("KIRA_ADMIN_TOKEN"):
        cfg.serve.admin_token = tok
    if key := os.environ.get("KIRA_API_KEY"):
        cfg.serve.api_key = key
    return cfg
