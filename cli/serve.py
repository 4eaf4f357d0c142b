"""``news-archive serve``: Datasette on the SQLite archive, with the project's metadata.

The metadata (``storage/datasette.yaml``, package data) describes every table and
view, offers facets, and makes ``articles`` and ``current_articles`` searchable
through the FTS5 table ``articles_search``. Datasette names a database after its
file, so the metadata's tables are put under the served file's name here. Body
text is cut on the HTML pages (`TRUNCATE_CELLS_HTML`); JSON and CSV keep it whole.

The file is served in Datasette's normal (mutable) mode, not ``--immutable``: a
crawl may write to it meanwhile, and Datasette sees the new rows.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Any

# Characters of a cell Datasette's HTML pages show before an ellipsis: a body of
# thousands of characters would flood every table page.
TRUNCATE_CELLS_HTML = 120
METADATA_RESOURCE = "datasette.yaml"
# The database name the metadata file lists its tables under.
METADATA_DATABASE = "archive"
INSTALL_HINT = "pip install 'news-archive[datasette]'"


def datasette_installed() -> bool:
    return importlib.util.find_spec("datasette") is not None


def metadata_for(database_file: Path) -> dict[str, Any]:
    """The project's Datasette metadata, its tables under the database name Datasette
    gives `database_file` (the file name without its suffix)."""
    import yaml  # Datasette's own dependency: present wherever Datasette is

    text = (importlib.resources.files("news_archive.storage") / METADATA_RESOURCE).read_text(
        "utf-8"
    )
    metadata: dict[str, Any] = yaml.safe_load(text)
    databases = metadata["databases"]
    databases[database_file.stem] = databases.pop(METADATA_DATABASE)
    return metadata


def datasette_arguments(
    database_file: Path, metadata_file: Path, host: str, port: int
) -> list[str]:
    """The arguments of ``datasette`` serving `database_file`."""
    return [
        "serve",
        str(database_file),
        "--metadata",
        str(metadata_file),
        "--setting",
        "truncate_cells_html",
        str(TRUNCATE_CELLS_HTML),
        "--host",
        host,
        "--port",
        str(port),
    ]


def serve(database_file: Path, *, host: str, port: int) -> int:
    """Run Datasette (installed: `datasette_installed`) in this process on
    `database_file` until it stops (Ctrl-C, SIGTERM); its exit status."""
    from datasette.cli import cli

    with tempfile.TemporaryDirectory(prefix="news-archive-datasette-") as folder:
        metadata_file = Path(folder) / "metadata.json"
        metadata_file.write_text(
            json.dumps(metadata_for(database_file), ensure_ascii=False), "utf-8"
        )
        try:
            cli.main(
                datasette_arguments(database_file, metadata_file, host, port),
                prog_name="datasette",
            )
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else 1
    return 0
