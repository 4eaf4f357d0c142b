"""Print a sample of the archive: ``python -m news_archive.storage.sample [DATABASE_URL]``.

The query is the README's "what is in the archive" example.
"""

from __future__ import annotations

import sys

from sqlalchemy import create_engine, text

SAMPLE_QUERY = """
SELECT a.site,
       a.published_at,
       a.author,
       (SELECT count(*) FROM article_versions v WHERE v.article_id = a.id) AS versions,
       substr(a.title, 1, 40) AS title
FROM articles a
ORDER BY a.site, a.published_at DESC
"""


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else "sqlite:///archive.db"
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(SAMPLE_QUERY)).all()
            errors = connection.execute(
                text(
                    "SELECT spider, reason, count(*) FROM crawl_errors GROUP BY spider, reason "
                    "ORDER BY spider, reason"
                )
            ).all()
    finally:
        engine.dispose()
    print(f"{len(rows)} articles in {url}")
    print(" | ".join(("site", "published_at (UTC)", "author", "versions", "title")))
    for row in rows:
        print(" | ".join(str(value) for value in row))
    print("\nproblems recorded (crawl_errors):")
    for spider, reason, count in errors:
        print(f"  {spider} {reason}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
