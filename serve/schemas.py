"""The HTTP API's request and response bodies (pydantic), in one place for every router."""

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kira.config import KiraConfig
from kira.serve import service
from kira.serve.security import clean_text

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FILENAME_RE = re.compile(r"[^A-Za-z0-9_.-]")


class Problem(BaseModel):
    detail: Any


class EvidenceOut(BaseModel):
    id: str
    title: str = ""
    text: str = ""
    score: float | None = None
    kind: str = "passage"
    source: str = ""
    retriever: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class AskResponse(BaseModel):
    answer: str | None = Field(description="The answer text; null when the reader found none.")
    score: float | None = Field(None, description="The reader's raw score (comparable within one reader).")
    probability: float | None = Field(None, description="P(answer is right) from the reader's calibration on "
                                                        "held-out questions; null when the reader has none.")
    no_answer: bool = False
    span: list[int] | None = Field(None, description="[start, end) character offsets into the answer's evidence text.")
    cells: list[list[int]] | None = Field(None, description="[row, column] of table cells the answer came from.")
    aggregation: str | None = None
    reader: str = ""
    retriever: str = ""
    answer_evidence_id: str | None = Field(None, description="Id of the evidence the span/cells refer to.")
    evidence: list[EvidenceOut] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per stage.")
    index_version: str
    batch_size: int = 1
    schema_version: int = Field(service.API_SCHEMA_VERSION, description="Version of this response's shape.")


class SearchResponse(BaseModel):
    schema_version: int = service.API_SCHEMA_VERSION
    query: str
    method: str
    index_version: str
    hits: list[EvidenceOut]
    timings: dict[str, float] = Field(default_factory=dict)


class EntityOut(BaseModel):
    id: str
    kb: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    description: str = ""


class EntitiesResponse(BaseModel):
    query: str
    entities: list[EntityOut]


class TailOut(BaseModel):
    id: str
    name: str
    score: float | None


class LinkPredictResponse(BaseModel):
    kb: str
    model: str
    head: str
    relation: str
    tails: list[TailOut]


class JobOut(BaseModel):
    id: str
    kind: str
    state: Literal["queued", "running", "succeeded", "failed"]
    progress: float
    stage: str
    error: str | None = None
    result: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None


@dataclass(frozen=True)
class RequestModels:
    """The request bodies of one app: their limits come from its config, and the KB types from the
    source registry (plug-ins included), so the OpenAPI spec states what this server accepts."""

    ask: type[BaseModel]
    search: type[BaseModel]
    link_predict: type[BaseModel]
    kb_path: type[BaseModel]
    kb_types: tuple[str, ...]


def kb_types() -> tuple[str, ...]:
    """Every KB source type the registry knows: built-ins and ``kira.sources`` entry points."""
    from kira.kb.registry import available

    return tuple(available())


def request_models(cfg: KiraConfig) -> RequestModels:
    """Request models whose limits come from config, so the OpenAPI spec states the real limits."""
    sc = cfg.serve
    types = kb_types()
    Question = Annotated[str, Field(min_length=1, max_length=sc.max_question_chars)]
    K = Annotated[int, Field(strict=True, ge=1, le=sc.max_k)]

    def _check(v: str, info) -> str:
        return clean_text(v, info.field_name, sc.max_question_chars)

    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        question: Question
        k: K = Field(10, description="Evidence passages retrieved for the reader.")
        sources: Literal[service.SOURCES] = "all"  # type: ignore[valid-type]
        reader: Literal[service.READERS] = "extractive"  # type: ignore[valid-type]
        method: Literal[service.METHODS] | None = Field(  # type: ignore[valid-type]
            None, description="Retrieval method; default from the workspace config.")
        _v = field_validator("question")(_check)

    class SearchRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        query: Question
        k: K = 10
        method: Literal[service.METHODS] = "hybrid"  # type: ignore[valid-type]
        _v = field_validator("query")(_check)

    class LinkPredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kb: str = Field(min_length=1, max_length=64, pattern=NAME_RE.pattern)
        head: Annotated[str, Field(min_length=1, max_length=500)]
        relation: Annotated[str, Field(min_length=1, max_length=500)]
        k: K = 10
        _v = field_validator("head", "relation")(lambda v, info: clean_text(v, info.field_name, 500))

    class KBPathRequest(BaseModel):
        """A KB already on the server, in one of ``serve.allowed_kb_dirs``."""

        model_config = ConfigDict(extra="forbid")
        name: str = Field(min_length=1, max_length=64, pattern=NAME_RE.pattern)
        type: Literal[types]  # type: ignore[valid-type]
        paths: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(min_length=1, max_length=64)
        embed: Literal[service.EMBED_MODELS] | None = Field(  # type: ignore[valid-type]
            None, description="Also train a KB embedding (for /v1/kb/link-predict).")
        replace: bool = Field(False, description="Replace an existing KB of this name read from other files.")

    return RequestModels(AskRequest, SearchRequest, LinkPredictRequest, KBPathRequest, types)
