"""``python -m archive_cli``: the same as the ``news-archive`` command."""

from __future__ import annotations

import sys

from archive_cli.main import main

sys.exit(main())
