"""Project commands (``COMMANDS_MODULE``): ``crawl`` replaces Scrapy's own, so that
a crawl whose health checks fail exits non-zero."""
