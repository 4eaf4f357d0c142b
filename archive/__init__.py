"""news-archive: a Scrapy crawler and versioned archive of SKT 뉴스룸 and 매일일보.

One import name for the whole distribution (see ``pyproject.toml``): the checkout's
``crawler/``, ``storage/``, ``migrations/`` and ``cli/`` folders are installed as
``news_archive.crawler``, ``news_archive.storage``, ``news_archive.migrations`` and
``news_archive.cli``; this folder (``archive/``) is the package itself.
"""
