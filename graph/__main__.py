"""``python -m kira.graph`` runs the graph CLI."""

from kira.graph.cli import app

app()
