"""Per-host delay and concurrency across workers, in-process: the claims in Redis
(`HostSlots`) that `GlobalPolitenessMiddleware` waits on."""

from __future__ import annotations

import asyncio
import itertools
import time

from redis import Redis

from news_archive.crawler.distributed.politeness import HostSlots

DELAY = 0.05


def _us(seconds: float) -> int:
    """Whole microseconds, as Redis's clock counts them (no float rounding between)."""
    return round(seconds * 1_000_000)


def _slots(redis: Redis, prefix: str, delay: float = DELAY, concurrency: int = 0) -> HostSlots:
    return HostSlots(redis, prefix, delay, concurrency, claim_seconds=30)


def test_a_second_claim_waits_out_the_delay(redis: Redis, prefix: str) -> None:
    slots = _slots(redis, prefix)
    claimed, first_at = slots.try_claim("www.m-i.kr", "a")
    assert claimed
    claimed, wait = slots.try_claim("www.m-i.kr", "b")
    assert not claimed and 0 < wait <= DELAY
    assert slots.try_claim("news.sktelecom.com", "c")[0]  # another host is free
    time.sleep(wait)
    claimed, second_at = slots.try_claim("www.m-i.kr", "b")
    assert claimed and _us(second_at) - _us(first_at) >= _us(DELAY)


def test_workers_claiming_one_host_are_never_closer_than_the_delay(
    redis: Redis, prefix: str
) -> None:
    """Three "workers" (each its own client and HostSlots) claim 8 slots each at once:
    the claims, as Redis timed them, are at least DELAY apart."""
    claimed_at: list[float] = []

    async def worker(slots: HostSlots, name: str) -> None:
        for number in range(8):
            _, at = await slots.claim("www.m-i.kr", f"{name}-{number}")
            claimed_at.append(at)

    async def crawl() -> None:
        clients = [Redis.from_url("redis://127.0.0.1:6379/0") for _ in range(3)]
        try:
            await asyncio.gather(
                *(worker(_slots(client, prefix), f"w{i}") for i, client in enumerate(clients))
            )
        finally:
            for client in clients:
                client.close()

    started = time.monotonic()
    # Its own loop, not asyncio.run: that would unset the Twisted reactor's loop,
    # which conftest installed for the in-process crawler tests.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(crawl())
    finally:
        loop.close()
    elapsed = time.monotonic() - started
    claimed_at.sort()
    gaps = [_us(later) - _us(earlier) for earlier, later in itertools.pairwise(claimed_at)]
    assert len(claimed_at) == 24
    assert min(gaps) >= _us(DELAY)
    assert elapsed >= 23 * DELAY  # never three times the rate


def test_concurrency_is_counted_across_workers(redis: Redis, prefix: str) -> None:
    first = _slots(redis, prefix, delay=0, concurrency=2)
    second = _slots(redis, prefix, delay=0, concurrency=2)
    assert first.try_claim("www.m-i.kr", "a")[0]
    assert second.try_claim("www.m-i.kr", "b")[0]
    assert not first.try_claim("www.m-i.kr", "c")[0]  # two in flight, from two workers
    second.release("www.m-i.kr", "b")
    assert first.try_claim("www.m-i.kr", "c")[0]


def test_an_in_flight_claim_of_a_dead_worker_expires(redis: Redis, prefix: str) -> None:
    slots = HostSlots(redis, prefix, 0, 1, claim_seconds=0.05)
    assert slots.try_claim("www.m-i.kr", "dead")[0]
    assert not slots.try_claim("www.m-i.kr", "alive")[0]
    time.sleep(0.06)
    assert slots.try_claim("www.m-i.kr", "alive")[0]
