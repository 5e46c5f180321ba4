"""``python -m retake`` is the ``retake`` command."""

from retake.cli import app

app()
