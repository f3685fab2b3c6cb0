"""kira: Knowledge-Injected Retrieval-Augmented QA.

Read ``docs/architecture.md`` first. The package is laid out by role:
``plm`` (models), ``kb`` (knowledge store and KB learning), ``index_build`` (offline indexes),
``retriever``, ``reader``, ``tables``, ``graph`` and ``serve``.
"""

__version__ = "0.1.0"
