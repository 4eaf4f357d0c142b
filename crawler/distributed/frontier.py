"""The crawl's shared state in Redis: who works on it, what is queued, what is leased.

scrapy-redis keeps the queue (a sorted set of pickled requests, scored by
priority) and the duplicate filter (a set of fingerprints); this module adds
what it lacks, each step one Lua script so that no two workers interleave:

- **a crawl**: the first worker of a spider finds no current crawl and starts
  one (``<prefix>:<spider>:current`` holds its id); later workers join it.  The
  first to join claims the seeding (``seeded`` = ``pending:<worker>``, then
  ``done``); the others never read the start requests.
- **leases**: `pop` moves the best request from the queue to the lease set
  (scored by expiry, Redis's clock) with its data kept aside; `renew` extends a
  worker's leases (its heartbeat); `ack` forgets them once their work is stored;
  `reclaim` puts expired leases (a dead worker's) back in the queue, bypassing
  the duplicate filter (their fingerprints are in it already).
- **registration**: each worker is a member of ``workers``, scored by when its
  registration expires, renewed by its heartbeat.
- **the end**: `leave` removes the worker; the last one out of a crawl with an
  empty queue and no lease deletes the crawl's keys, so the next crawl starts with
  a fresh queue and duplicate filter.  Every key also expires after the crawl TTL
  without a heartbeat (all workers killed).

Keys (``<base>`` = ``<prefix>:<spider>:<crawl id>``): ``<base>:queue``,
``<base>:dupefilter``, ``<base>:leases``, ``<base>:leased`` (hash: lease id ->
request data, ``p:<id>`` -> its queue score), ``<base>:workers``, ``<base>:seeded``.
Times are milliseconds of Redis's own clock (``TIME``), never a worker's.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis

_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# KEYS: current; ARGV: prefix:spider, new crawl id, worker, registration ms, ttl ms,
# forced ("1": ARGV[2] is the crawl's id whatever `current` says).
_JOIN = (
    _NOW
    + """
local crawl = ARGV[2]
if ARGV[6] ~= '1' then
  crawl = redis.call('GET', KEYS[1]) or ARGV[2]
end
redis.call('SET', KEYS[1], crawl, 'PX', ARGV[5])
local base = ARGV[1] .. ':' .. crawl
redis.call('ZADD', base .. ':workers', now + tonumber(ARGV[4]), ARGV[3])
redis.call('PEXPIRE', base .. ':workers', ARGV[5])
local seeder = redis.call('SET', base .. ':seeded', 'pending:' .. ARGV[3], 'NX', 'PX', ARGV[5])
if seeder then return {crawl, 1} end
return {crawl, 0}
"""
)

# KEYS: queue, leases, leased; ARGV: lease ms.  Returns {lease id, data} or nil.
_POP = (
    _NOW
    + """
local best = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #best == 0 then return false end
redis.call('ZREM', KEYS[1], best[1])
local id = redis.sha1hex(best[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), id)
redis.call('HSET', KEYS[3], id, best[1], 'p:' .. id, best[2])
return {id, best[1]}
"""
)

# KEYS: queue, leases, leased; ARGV: lease ids.  Back to the queue, at their score.
_REQUEUE = """
local count = 0
for _, id in ipairs(ARGV) do
  local data = redis.call('HGET', KEYS[3], id)
  if data and redis.call('ZREM', KEYS[2], id) == 1 then
    redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[3], 'p:' .. id) or 0, data)
    count = count + 1
  end
  redis.call('HDEL', KEYS[3], id, 'p:' .. id)
end
return count
"""

# KEYS: queue, leases, leased.  Every expired lease back to the queue.
_RECLAIM = (
    _NOW
    + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
local count = 0
for _, id in ipairs(expired) do
  local data = redis.call('HGET', KEYS[3], id)
  if data then
    redis.call('ZADD', KEYS[1], redis.call('HGET', KEYS[3], 'p:' .. id) or 0, data)
    count = count + 1
  end
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id, 'p:' .. id)
end
return count
"""
)

# KEYS: leases, workers, current, then every key of the crawl (for their TTL);
# ARGV: lease ms, worker, registration ms, ttl ms, crawl id, lease ids...
# Returns how many of the leases were still held (the others expired and went back).
_HEARTBEAT = (
    _NOW
    + """
local renewed = 0
for index = 6, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[index]) then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[index])
    renewed = renewed + 1
  end
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
if redis.call('GET', KEYS[3]) == ARGV[5] then
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
for index = 4, #KEYS do
  redis.call('PEXPIRE', KEYS[index], ARGV[4])
end
return renewed
"""
)

# KEYS: queue, leases, leased, workers, seeded.  Returns {queued, leased, live
# workers, seeding state}: "done", "pending" (its worker is registered) or "orphaned".
_STATUS = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local seeded = redis.call('GET', KEYS[5]) or 'done'
local seeding = 'done'
if string.sub(seeded, 1, 8) == 'pending:' then
  if redis.call('ZSCORE', KEYS[4], string.sub(seeded, 9)) then
    seeding = 'pending'
  else
    seeding = 'orphaned'
  end
end
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]),
        redis.call('ZCARD', KEYS[4]), seeding}
"""
)

# KEYS: workers, queue, leases, current, then every key of the crawl; ARGV: worker,
# crawl id, ttl ms.  Returns 1 when this was the last worker and the crawl's keys are
# gone; else the keys (work left, or other workers) expire after the TTL unless renewed.
_LEAVE = (
    _NOW
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[2]) > 0
   or redis.call('ZCARD', KEYS[3]) > 0 then
  for index = 5, #KEYS do redis.call('PEXPIRE', KEYS[index], ARGV[3]) end
  if redis.call('GET', KEYS[4]) == ARGV[2] then redis.call('PEXPIRE', KEYS[4], ARGV[3]) end
  return 0
end
for index = 5, #KEYS do redis.call('DEL', KEYS[index]) end
if redis.call('GET', KEYS[4]) == ARGV[2] then redis.call('DEL', KEYS[4]) end
return 1
"""
)


@dataclass(frozen=True, slots=True)
class CrawlKeys:
    """The Redis keys of one crawl of one spider."""

    spider_prefix: str  # "<prefix>:<spider>"
    crawl_id: str

    @property
    def current(self) -> str:
        """Holds the id of the spider's current crawl (the one new workers join)."""
        return f"{self.spider_prefix}:current"

    def _key(self, name: str) -> str:
        return f"{self.spider_prefix}:{self.crawl_id}:{name}"

    @property
    def queue(self) -> str:
        return self._key("queue")

    @property
    def dupefilter(self) -> str:
        return self._key("dupefilter")

    @property
    def leases(self) -> str:
        return self._key("leases")

    @property
    def leased(self) -> str:
        return self._key("leased")

    @property
    def workers(self) -> str:
        return self._key("workers")

    @property
    def seeded(self) -> str:
        return self._key("seeded")

    def all(self) -> list[str]:
        """Every key of the crawl (not `current`, which the spider's crawls share)."""
        return [self.queue, self.dupefilter, self.leases, self.leased, self.workers, self.seeded]


@dataclass(frozen=True, slots=True)
class CrawlStatus:
    """What `Frontier.status` sees: requests queued and leased in the whole crawl,
    live workers, and the seeding (``done``, ``pending`` or ``orphaned``: claimed
    by a worker that is no longer registered)."""

    queued: int
    leased: int
    workers: int
    seeding: str

    @property
    def finished(self) -> bool:
        """Nothing left to fetch anywhere, and no start request still to come."""
        return not self.queued and not self.leased and self.seeding != "pending"


@dataclass(frozen=True, slots=True)
class Lease:
    """A request popped from the queue: its lease id and its serialized data."""

    id: str
    data: bytes


class Frontier:
    """One worker's handle on the crawl of one spider in Redis.

    Durations are seconds; `lease_seconds` is how long a popped request stays
    leased without a heartbeat, `registration_seconds` how long a worker stays
    registered without one, `ttl_seconds` how long a crawl's keys outlive its last
    heartbeat.
    """

    def __init__(
        self,
        server: Redis,
        prefix: str,
        spider: str,
        worker: str,
        *,
        lease_seconds: float,
        registration_seconds: float,
        ttl_seconds: float,
    ) -> None:
        self.server = server
        self.spider_prefix = f"{prefix}:{spider}"
        self.worker = worker
        self.lease_ms = int(lease_seconds * 1000)
        self.registration_ms = int(registration_seconds * 1000)
        self.ttl_ms = int(ttl_seconds * 1000)
        self.keys: CrawlKeys | None = None
        self.seeder = False
        self._join = server.register_script(_JOIN)
        self._pop = server.register_script(_POP)
        self._requeue = server.register_script(_REQUEUE)
        self._reclaim = server.register_script(_RECLAIM)
        self._heartbeat = server.register_script(_HEARTBEAT)
        self._status = server.register_script(_STATUS)
        self._leave = server.register_script(_LEAVE)

    @property
    def crawl(self) -> CrawlKeys:
        if self.keys is None:
            raise RuntimeError("the worker has not joined a crawl")
        return self.keys

    def join(self, crawl_id: str | None = None) -> CrawlKeys:
        """Register this worker in the spider's current crawl, starting one when
        there is none (or in the crawl `crawl_id`, when given); `seeder` says
        whether this worker claimed the seeding."""
        new_id = crawl_id or new_crawl_id()
        found, seeder = self._join(
            keys=[f"{self.spider_prefix}:current"],
            args=[
                self.spider_prefix,
                new_id,
                self.worker,
                self.registration_ms,
                self.ttl_ms,
                "1" if crawl_id else "0",
            ],
        )
        self.keys = CrawlKeys(self.spider_prefix, _text(found))
        self.seeder = bool(seeder)
        return self.keys

    def seeding_done(self) -> None:
        """The seeder has enqueued every start request."""
        self.server.set(self.crawl.seeded, "done", keepttl=True)

    def pop(self) -> Lease | None:
        """Lease the best queued request, or None when the queue is empty."""
        keys = self.crawl
        found = self._pop(keys=[keys.queue, keys.leases, keys.leased], args=[self.lease_ms])
        if not found:
            return None
        return Lease(_text(found[0]), found[1])

    def ack(self, lease_ids: list[str]) -> int:
        """Forget leases whose work is done; returns how many were still held (the
        others had expired and gone back to the queue: their request is fetched again)."""
        if not lease_ids:
            return 0
        keys = self.crawl
        fields = [field for lease in lease_ids for field in (lease, f"p:{lease}")]
        with self.server.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.leases, *lease_ids)
            pipe.hdel(keys.leased, *fields)
            removed, _ = pipe.execute()
        return int(removed)

    def requeue(self, lease_ids: list[str]) -> int:
        """Give leases back to the queue now (a worker cut short); returns how many."""
        if not lease_ids:
            return 0
        keys = self.crawl
        return int(self._requeue(keys=[keys.queue, keys.leases, keys.leased], args=lease_ids))

    def reclaim(self) -> int:
        """Put every expired lease back in the queue; returns how many."""
        keys = self.crawl
        return int(self._reclaim(keys=[keys.queue, keys.leases, keys.leased]))

    def heartbeat(self, lease_ids: list[str]) -> int:
        """Renew this worker's registration and `lease_ids`, and the crawl's TTL;
        returns how many of the leases were still held."""
        keys = self.crawl
        renewed = self._heartbeat(
            keys=[keys.leases, keys.workers, keys.current, *keys.all()],
            args=[
                self.lease_ms,
                self.worker,
                self.registration_ms,
                self.ttl_ms,
                keys.crawl_id,
                *lease_ids,
            ],
        )
        return int(renewed)

    def status(self) -> CrawlStatus:
        keys = self.crawl
        queued, leased, workers, seeding = self._status(
            keys=[keys.queue, keys.leases, keys.leased, keys.workers, keys.seeded]
        )
        return CrawlStatus(int(queued), int(leased), int(workers), _text(seeding))

    def leave(self) -> bool:
        """Deregister; True when this was the last worker of a finished crawl and its
        keys were deleted."""
        keys = self.crawl
        return bool(
            self._leave(
                keys=[keys.workers, keys.queue, keys.leases, keys.current, *keys.all()],
                args=[self.worker, keys.crawl_id, self.ttl_ms],
            )
        )


def new_crawl_id() -> str:
    """A crawl id: when it started (UTC) and a random suffix, e.g.
    ``20261201T041500Z-3f2a9c``."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
