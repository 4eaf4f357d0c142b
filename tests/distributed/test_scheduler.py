"""The shared scheduler's one-step enqueue, on the real Redis."""

from __future__ import annotations

from redis import Redis

from news_archive.crawler.distributed.scheduler import ENQUEUE


def test_a_request_is_marked_seen_only_together_with_being_queued(
    redis: Redis, prefix: str
) -> None:
    """The duplicate filter and the queue change in one step: a request new to the
    filter is queued, one it has seen is not queued again, and one not to filter
    (a start request, a reclaimed lease) is queued without being marked."""
    seen, queue = f"{prefix}:dupefilter", f"{prefix}:requests"
    enqueue = redis.register_script(ENQUEUE)

    assert enqueue(keys=[seen, queue], args=["fp-a", 0, b"request a"]) == 1
    assert enqueue(keys=[seen, queue], args=["fp-a", 0, b"request a again"]) == 0
    assert enqueue(keys=[seen, queue], args=["", -1, b"feed"]) == 1
    assert enqueue(keys=[seen, queue], args=["", -1, b"feed"]) == 1  # same data, one entry

    assert redis.smembers(seen) == {b"fp-a"}
    assert redis.zrange(queue, 0, -1, withscores=True) == [(b"feed", -1.0), (b"request a", 0.0)]
