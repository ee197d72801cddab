"""``python -m aami``."""

from aami.cli.main import app

app()
