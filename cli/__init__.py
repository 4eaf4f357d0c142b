"""``news-archive``: crawl, search, show, export and count what the crawler archived.

The command line only: every query lives in `news_archive.storage`.
"""
