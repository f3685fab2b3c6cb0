"""``python -m kira.tables`` runs the tables CLI."""

from kira.tables.cli import app

if __name__ == "__main__":
    app()
