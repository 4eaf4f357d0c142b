"""The command-line fixtures of ``tests/test_cli.py``, shared with the tests of
each ``cli/`` module here."""

from __future__ import annotations

from tests.test_cli import archive_url, cli

__all__ = ["archive_url", "cli"]
