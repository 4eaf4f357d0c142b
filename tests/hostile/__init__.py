"""The hostile-input and fault suite: what operators and live sites do to a crawl.

Each module takes one area of shared failures (issue "Nothing lost, nothing forged,
every failure loud"); `proxy` stands between a test and PostgreSQL to break the
connection on purpose.
"""
