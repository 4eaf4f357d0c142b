"""Generic article machinery: decoding, metadata signals, dates, body text, feeds.

Nothing in this package does I/O or reads the clock; site modules in
`crawler.sites` combine these pieces with their own knowledge.
"""
