"""Run a kira CLI command in a fresh interpreter and return the JSON object it prints.

WHY: the processes that retrieve (the demo, the server) host pyserini's JVM, and oneDNN's CPU
kernels (AMX/bf16) have crashed with SIGSEGV next to it; training in a clean interpreter keeps
torch alone in its process and hands all training memory back when it exits. Used by the
default-model trainers (``kira.reader.defaults``, ``kira.tables.defaults``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from kira.errors import KiraError


def run_kira_json(module: str, args: Sequence[str], what: str) -> dict[str, Any]:
    """``python -m <module> <args…>`` (which must print one JSON object); a failure raises
    ``KiraError`` naming ``what`` and the tail of the child's stderr."""
    proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=os.environ.copy())
    if proc.returncode != 0:
        raise KiraError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout[proc.stdout.index("{"):])
