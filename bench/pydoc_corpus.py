"""Render standard-library documentation into JSONL passages.

Usage:
    python bench/pydoc_corpus.py --out PATH [--modules m1,m2]

One passage per documented public object of a fixed list of widely used
standard-library modules: the module itself, each public function and class,
and each public method defined on a public class.  Every line is

    {"id": "<dotted.qualified.name>", "title": "<dotted.qualified.name>", "text": "..."}

The text is the signature (when ``inspect.signature`` works) followed by the
docstring, whitespace-normalised.  Docstrings longer than ~1200 characters are
split on paragraph boundaries; the extra chunks get ids suffixed "#2", "#3", ...
and keep the same title.  Output is sorted and deterministic for a given Python
build (stdlib only; written for Python 3.11).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import re
import sys
import warnings

MODULES = [
    "abc", "argparse", "array", "base64", "bisect", "builtins", "calendar",
    "collections", "contextlib", "copy", "csv", "dataclasses", "datetime",
    "decimal", "difflib", "email.utils", "enum", "fnmatch", "fractions",
    "functools", "glob", "gzip", "hashlib", "heapq", "hmac", "html",
    "http.client", "inspect", "io", "itertools", "json", "logging", "math",
    "operator", "os", "os.path", "pathlib", "pickle", "platform", "pprint",
    "queue", "random", "re", "secrets", "shutil", "socket", "sqlite3",
    "statistics", "string", "subprocess", "sys", "tarfile", "tempfile",
    "textwrap", "threading", "time", "timeit", "traceback", "typing",
    "unicodedata", "urllib.parse", "uuid", "warnings", "zipfile", "zlib",
]

# Implementation modules whose objects count as living in the public module
# (C accelerators and platform back-ends), beyond the generic "_<name>" rule.
IMPL_MODULES = {
    "os": {"posix", "nt"},
    "os.path": {"posixpath", "ntpath", "genericpath"},
    "threading": {"_thread"},
    "hashlib": {"_hashlib", "_blake2", "_sha3", "_md5", "_sha1", "_sha256", "_sha512"},
    "email.utils": {"email._parseaddr"},
}

MAX_CHARS = 1200
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def normalise(text: str) -> str:
    return " ".join(text.split())


def belongs(obj, modname: str) -> bool:
    """True if obj is defined in modname (not re-exported from elsewhere)."""
    if modname == "builtins":
        return True
    owner = getattr(obj, "__module__", None)
    if owner is None:
        return True  # some C objects do not record a module; they live here
    if owner == modname or owner.startswith(modname + "."):
        return True
    if owner == "_" + modname.rsplit(".", 1)[-1]:
        return True
    return owner in IMPL_MODULES.get(modname, set())


def stable_repr(value) -> str:
    """repr() without memory addresses, install paths or hash-seed set order."""
    if isinstance(value, str) and value and value == sys.executable:
        return "sys.executable"  # e.g. platform.architecture(executable=...)
    if isinstance(value, (set, frozenset)) and value:
        items = ", ".join(sorted(stable_repr(v) for v in value))
        return f"{{{items}}}" if isinstance(value, set) else f"frozenset({{{items}}})"
    return _ADDRESS.sub("", repr(value))


def signature_text(name: str, obj) -> str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    params = []
    for p in sig.parameters.values():
        if p.default is not p.empty:
            p = p.replace(default=_Raw(stable_repr(p.default)))
        params.append(p)
    with contextlib.suppress(ValueError):
        sig = sig.replace(parameters=params)
    return _ADDRESS.sub("", name + str(sig))


class _Raw:
    """Placeholder whose repr is a precomputed string (for signature defaults)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def own_doc(obj) -> str:
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return ""
    return inspect.cleandoc(doc)


def split_long(paragraph: str, limit: int) -> list[str]:
    """Split one over-long paragraph at sentence, then word, boundaries."""
    pieces, current = [], ""
    for sentence in re.split(r"(?<=[.!?]) ", paragraph):
        words = [sentence] if len(sentence) <= limit else sentence.split(" ")
        for word in words:
            candidate = f"{current} {word}" if current else word
            if len(candidate) <= limit or not current:
                current = candidate
            else:
                pieces.append(current)
                current = word
    if current:
        pieces.append(current)
    return pieces


def chunk(signature: str, doc: str) -> list[str]:
    paragraphs = [normalise(p) for p in re.split(r"\n\s*\n", doc)]
    paragraphs = [p for p in paragraphs if p]
    if signature:
        paragraphs.insert(0, normalise(signature))
    chunks, current = [], ""
    for para in paragraphs:
        for piece in split_long(para, MAX_CHARS) if len(para) > MAX_CHARS else [para]:
            candidate = f"{current} {piece}" if current else piece
            if len(candidate) <= MAX_CHARS or not current:
                current = candidate
            else:
                chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def is_method(value) -> bool:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    return inspect.isroutine(value)


def collect(modname: str):
    """Yield (qualified name, signature, docstring) for one module."""
    module = importlib.import_module(modname)
    doc = own_doc(module)
    if doc:
        yield modname, "", doc
    for name in sorted(dir(module)):
        if name.startswith("_"):
            continue
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        if not belongs(obj, modname):
            continue
        qual = f"{modname}.{name}"
        doc = own_doc(obj)
        if doc:
            yield qual, signature_text(name, obj), doc
        if not inspect.isclass(obj):
            continue
        for mname, raw in sorted(vars(obj).items()):
            if mname.startswith("_") or not is_method(raw):
                continue
            doc = own_doc(raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw)
            if doc:
                yield f"{qual}.{mname}", signature_text(mname, getattr(obj, mname)), doc


def build(modules: list[str]) -> list[dict]:
    seen, passages = set(), []
    for modname in modules:
        for qual, sig, doc in collect(modname):
            if qual in seen:
                continue
            seen.add(qual)
            for i, text in enumerate(chunk(sig, doc), start=1):
                pid = qual if i == 1 else f"{qual}#{i}"
                passages.append((qual, i, {"id": pid, "title": qual, "text": text}))
    passages.sort(key=lambda t: (t[0], t[1]))
    return [p for _, _, p in passages]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output JSONL path")
    parser.add_argument("--modules", help="comma-separated subset of modules")
    args = parser.parse_args(argv)
    modules = args.modules.split(",") if args.modules else MODULES
    with warnings.catch_warnings():  # e.g. typing.io warns when inspected
        warnings.simplefilter("ignore", DeprecationWarning)
        passages = build(modules)
    with open(args.out, "w", encoding="utf-8", newline="\n") as fh:
        for p in passages:
            fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    print(len(passages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
