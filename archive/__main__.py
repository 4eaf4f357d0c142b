"""``python -m news_archive``: the same as the ``news-archive`` command."""

from __future__ import annotations

import sys

from news_archive.cli.main import main

sys.exit(main())
