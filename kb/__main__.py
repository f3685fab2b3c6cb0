"""``python -m kira.kb`` runs the KB CLI (add, remove, list, embed, link, facts, eval)."""

from kira.kb.cli import app

app(prog_name="kira kb")
