"""The crawl's state in Redis, in-process: joining and seeding once, leases (pop,
ack, renew, expiry back to the queue), and the last worker's clean-up."""

from __future__ import annotations

import time

from redis import Redis

from news_archive.crawler.distributed.frontier import Frontier


def _worker(redis: Redis, prefix: str, name: str, lease: float = 60.0) -> Frontier:
    return Frontier(
        redis,
        prefix,
        "maeil_ilbo",
        name,
        lease_seconds=lease,
        registration_seconds=30,
        ttl_seconds=600,
    )


def _push(redis: Redis, frontier: Frontier, data: bytes, score: float = 0) -> None:
    redis.zadd(frontier.crawl.queue, {data: score})


def test_the_first_worker_starts_the_crawl_and_seeds_it(redis: Redis, prefix: str) -> None:
    first, second = _worker(redis, prefix, "a:1"), _worker(redis, prefix, "b:2")
    keys = first.join()
    assert second.join() == keys
    assert first.seeder and not second.seeder
    assert second.status().seeding == "pending"
    first.seeding_done()
    assert second.status().seeding == "done"
    assert second.status().workers == 2


def test_a_seeding_whose_worker_is_gone_is_orphaned(redis: Redis, prefix: str) -> None:
    seeder = Frontier(
        redis,
        prefix,
        "maeil_ilbo",
        "a:1",
        lease_seconds=60,
        registration_seconds=0.05,
        ttl_seconds=600,
    )
    seeder.join()
    other = _worker(redis, prefix, "b:2")
    other.join()
    time.sleep(0.1)
    status = other.status()
    assert status.seeding == "orphaned"
    assert status.finished  # an empty queue: the others need not wait for it forever


def test_a_given_crawl_id_is_joined_whatever_runs(redis: Redis, prefix: str) -> None:
    first, second = _worker(redis, prefix, "a:1"), _worker(redis, prefix, "b:2")
    first.join()
    keys = second.join("2026-12-01")
    assert keys.crawl_id == "2026-12-01"
    assert second.seeder  # the first worker of that crawl


def test_a_popped_request_is_leased_until_acknowledged(redis: Redis, prefix: str) -> None:
    worker = _worker(redis, prefix, "a:1")
    worker.join()
    worker.seeding_done()
    _push(redis, worker, b"listing", score=1)
    _push(redis, worker, b"article", score=0)
    lease = worker.pop()
    assert lease is not None and lease.data == b"article"  # the lowest score first
    status = worker.status()
    assert (status.queued, status.leased, status.finished) == (1, 1, False)
    assert worker.ack([lease.id]) == 1
    assert worker.ack([lease.id]) == 0  # acknowledged once
    second = worker.pop()
    assert second is not None and second.data == b"listing"
    assert worker.pop() is None
    worker.ack([second.id])
    assert worker.status().finished


def test_an_expired_lease_goes_back_to_the_queue_with_its_priority(
    redis: Redis, prefix: str
) -> None:
    dead = _worker(redis, prefix, "a:1", lease=0.05)
    dead.join()
    _push(redis, dead, b"listing", score=1)
    _push(redis, dead, b"article", score=0)
    assert dead.pop() is not None  # leased, then the worker "dies"
    time.sleep(0.1)
    survivor = _worker(redis, prefix, "b:2")
    survivor.join()
    assert survivor.reclaim() == 1
    assert redis.zscore(survivor.crawl.queue, b"article") == 0
    lease = survivor.pop()
    assert lease is not None and lease.data == b"article"
    assert survivor.ack([lease.id]) == 1


def test_a_heartbeat_renews_the_leases_it_names(redis: Redis, prefix: str) -> None:
    worker = _worker(redis, prefix, "a:1", lease=0.3)
    worker.join()
    _push(redis, worker, b"kept")
    _push(redis, worker, b"dropped", score=1)
    kept, dropped = worker.pop(), worker.pop()
    assert kept is not None and dropped is not None
    for _ in range(4):
        time.sleep(0.1)
        assert worker.heartbeat([kept.id]) == 1
    assert worker.reclaim() == 1  # only the lease the heartbeat did not name
    assert redis.zrange(worker.crawl.queue, 0, -1) == [b"dropped"]
    assert worker.ack([kept.id]) == 1


def test_requeue_gives_leases_back_at_once(redis: Redis, prefix: str) -> None:
    worker = _worker(redis, prefix, "a:1")
    worker.join()
    _push(redis, worker, b"page", score=-3)
    lease = worker.pop()
    assert lease is not None
    assert worker.requeue([lease.id]) == 1
    assert redis.zscore(worker.crawl.queue, b"page") == -3
    assert worker.status().leased == 0


def test_the_last_worker_of_a_finished_crawl_deletes_its_keys(redis: Redis, prefix: str) -> None:
    first, second = _worker(redis, prefix, "a:1"), _worker(redis, prefix, "b:2")
    keys = first.join()
    second.join()
    first.seeding_done()
    redis.sadd(keys.dupefilter, "fingerprint")
    assert not first.leave()  # the other worker is still registered
    assert redis.exists(keys.dupefilter)
    assert second.leave()
    assert not any(redis.exists(key) for key in [*keys.all(), keys.current])
    # The next crawl of the spider is a new one, with an empty duplicate filter.
    third = _worker(redis, prefix, "c:3")
    assert third.join().crawl_id != keys.crawl_id
    assert third.seeder


def test_a_crawl_left_with_work_keeps_its_keys(redis: Redis, prefix: str) -> None:
    worker = _worker(redis, prefix, "a:1")
    keys = worker.join()
    _push(redis, worker, b"page")
    assert not worker.leave()
    assert redis.zcard(keys.queue) == 1
    assert redis.pttl(keys.queue) > 0  # gone after REDIS_CRAWL_TTL if nobody resumes it
    resumed = _worker(redis, prefix, "b:2")
    assert resumed.join() == keys
