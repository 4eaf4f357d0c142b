"""Scrapy extensions of the archive: whole-crawl concerns beside the pipeline."""
