"""``news-archive``: search, show, export and count what the crawler archived.

The command line only: every query lives in `storage.search` and `storage.engine`.
"""
