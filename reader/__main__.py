"""``python -m kira.reader`` runs the reader CLI."""

from kira.reader.cli import app

if __name__ == "__main__":
    app()
