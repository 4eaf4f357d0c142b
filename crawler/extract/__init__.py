"""Generic article machinery: decoding, metadata signals, dates, body text, feeds,
and the site contract.

`site` holds the `Site` base class and the one extraction skeleton; `signals` the
named, reusable signals sites chain in their own precedence. Nothing in this
package does I/O or reads the clock; the site declarations in `crawler.sites`
combine these pieces with their own knowledge.
"""
