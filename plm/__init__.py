"""The PLM zoo (resolver, tiny test models) and the fast text encoder."""

from kira.plm.encoder import TextEncoder
from kira.plm.zoo import DEFAULT_SPEC, load, load_model, load_tokenizer, resolve

__all__ = ["DEFAULT_SPEC", "TextEncoder", "load", "load_model", "load_tokenizer", "resolve"]
