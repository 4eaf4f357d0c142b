"""The settings module is the one place that reads the environment (INTERFACE.md:
each of these settings may be given as an environment variable of the same name)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

NAMES = ("DATABASE_URL", "REPLAY_DIR", "WARC_DIR", "WARC_ENABLED", "INCREMENTAL", "REDIS_URL")
READ = (
    "import json, news_archive.crawler.settings as s; "
    f"print(json.dumps({{n: getattr(s, n) for n in {NAMES!r}}}))"
)


def _settings(**environment: str) -> dict[str, object]:
    env = {key: value for key, value in os.environ.items() if key not in NAMES} | environment
    result = subprocess.run(
        [sys.executable, "-c", READ], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_defaults_without_environment() -> None:
    assert _settings() == {
        "DATABASE_URL": "sqlite:///archive.db",
        "REPLAY_DIR": None,
        "WARC_DIR": "warc",
        "WARC_ENABLED": True,
        "INCREMENTAL": True,
        "REDIS_URL": None,
    }


@pytest.mark.parametrize("off", ["0", "false", "No", "off"])
def test_environment_variables_are_read(off: str) -> None:
    assert _settings(
        DATABASE_URL="postgresql+psycopg://u@h/db",
        REPLAY_DIR="/replay",
        WARC_DIR="/warc",
        WARC_ENABLED=off,
        INCREMENTAL=off,
        REDIS_URL="redis://127.0.0.1:6379/3",
    ) == {
        "DATABASE_URL": "postgresql+psycopg://u@h/db",
        "REPLAY_DIR": "/replay",
        "WARC_DIR": "/warc",
        "WARC_ENABLED": False,
        "INCREMENTAL": False,
        "REDIS_URL": "redis://127.0.0.1:6379/3",
    }
