"""``python -m kira.index_build`` runs the index CLI (build, list, verify, add, delete, compact, gc)."""

from kira.index_build.cli import app

app(prog_name="kira index")
