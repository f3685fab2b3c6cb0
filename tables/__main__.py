"""``python -m kira.tables`` runs the tables CLI (user errors print without a traceback, as in ``kira``)."""

import sys

from kira.errors import KiraError
from kira.tables.cli import app

if __name__ == "__main__":
    try:
        app()
    except KiraError as e:
        print(f"kira: error: {e}", file=sys.stderr)
        sys.exit(2)
