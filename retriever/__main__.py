"""``python -m kira.retriever`` runs the retriever CLI (search, train, eval)."""

from kira.retriever.cli import app

app(prog_name="kira retriever")
