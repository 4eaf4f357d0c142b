"""Politeness across all workers: per-host delay and concurrency held in Redis.

Scrapy's download slots space a worker's own requests; N workers would send N
times the rate a site agreed to.  `GlobalPolitenessMiddleware` asks Redis before
each download: a request may go when no other request to its host went less than
``DOWNLOAD_DELAY`` seconds ago (by Redis's clock) and fewer than
``CONCURRENT_REQUESTS_PER_DOMAIN`` requests to the host are in flight in the whole
crawl; otherwise it waits the time Redis names (an asyncio sleep: the reactor
keeps running) and asks again.  The check and the claim are one Lua script, and
the claim is made at the moment the request goes, so two requests to one host
are never closer than the delay however late a worker wakes up.

It sits at 940, before the replay middleware (950) answers, so replayed crawls
are as polite as live ones and the tests can measure it.  In-flight claims
expire after ``DOWNLOAD_TIMEOUT`` (a worker killed mid-download holds its slot no
longer than its download could have lasted).
Host keys: ``<REDIS_KEY_PREFIX>:host:<host>:last`` and ``...:inflight``; every
crawl and spider on one Redis share them, as they share the site.
"""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import urlsplit

from redis import Redis
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from news_archive.crawler.distributed.worker import CrawlWorker

# KEYS: last, inflight; ARGV: delay µs, concurrency limit (0: none), token, token ms.
# Returns {1, now µs} when the request may go (claimed), {0, wait µs} when not.  Times
# are whole microseconds of Redis's clock, exact in Lua's doubles, passed as text.
_CLAIM = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local delay = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', math.floor(now / 1000))
  if redis.call('ZCARD', KEYS[2]) >= limit then
    return {0, '10000'}
  end
end
local last = tonumber(redis.call('GET', KEYS[1]) or '')
if last and now < last + delay then
  return {0, string.format('%.0f', last + delay - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', now), 'PX', math.ceil(delay / 1000) + 60000)
if limit > 0 then
  redis.call('ZADD', KEYS[2], math.floor(now / 1000) + tonumber(ARGV[4]), ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return {1, string.format('%.0f', now)}
"""

# Meta keys of a request's in-flight claim (the host and its token), and of when it
# was claimed (Unix seconds, Redis's clock).
CLAIM = "politeness_claim"
CLAIMED_AT = "politeness_claimed_at"


class HostSlots:
    """The per-host claims in Redis (usable without Scrapy: the unit tests)."""

    def __init__(
        self, server: Redis, prefix: str, delay: float, concurrency: int, claim_seconds: float
    ) -> None:
        self.server = server
        self.prefix = prefix
        self.delay_us = round(delay * 1_000_000)
        self.concurrency = concurrency
        self.claim_ms = int(claim_seconds * 1000)
        self._claim = server.register_script(_CLAIM)

    def _keys(self, host: str) -> list[str]:
        return [f"{self.prefix}:host:{host}:last", f"{self.prefix}:host:{host}:inflight"]

    def try_claim(self, host: str, token: str) -> tuple[bool, float]:
        """Claim a slot for `host`: (True, when: Unix seconds of Redis's clock) when
        claimed, else (False, seconds to wait)."""
        claimed, value = self._claim(
            keys=self._keys(host),
            args=[self.delay_us, self.concurrency, token, self.claim_ms],
        )
        if int(claimed):
            return True, int(value) / 1_000_000
        return False, max(int(value) / 1_000_000, 0.001)

    async def claim(self, host: str, token: str) -> tuple[float, float]:
        """Wait (asyncio) until a slot for `host` is claimed; returns (seconds waited,
        when it was claimed: Unix seconds of Redis's clock)."""
        waited = 0.0
        while True:
            claimed, value = self.try_claim(host, token)
            if claimed:
                return waited, value
            await asyncio.sleep(value)
            waited += value

    def release(self, host: str, token: str) -> None:
        """The request to `host` is done: its in-flight claim ends."""
        if self.concurrency > 0:
            self.server.zrem(self._keys(host)[1], token)


class GlobalPolitenessMiddleware:
    """Downloader middleware: per-host delay and concurrency across every worker."""

    def __init__(self, crawler: Crawler, slots: HostSlots) -> None:
        self.crawler = crawler
        self.slots = slots

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GlobalPolitenessMiddleware:
        settings = crawler.settings
        if not settings.get("REDIS_URL"):
            raise NotConfigured("REDIS_URL is not set: one worker, Scrapy's own slots")
        delay = settings.getfloat("DOWNLOAD_DELAY")
        concurrency = settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN")
        if delay <= 0 and concurrency <= 0:
            raise NotConfigured("neither DOWNLOAD_DELAY nor CONCURRENT_REQUESTS_PER_DOMAIN")
        worker = crawler.get_extension(CrawlWorker)
        slots = HostSlots(
            worker.server,
            settings["REDIS_KEY_PREFIX"],
            delay,
            concurrency,
            settings.getfloat("DOWNLOAD_TIMEOUT"),
        )
        return cls(crawler, slots)

    async def process_request(self, request: Request) -> None:
        host = request.meta.get("download_slot") or urlsplit(request.url).hostname or ""
        token = secrets.token_hex(8)
        waited, claimed_at = await self.slots.claim(host, token)
        request.meta[CLAIM] = (host, token)
        request.meta[CLAIMED_AT] = claimed_at
        stats = self.crawler.stats
        stats.inc_value("distributed/politeness/requests")
        if waited:
            stats.inc_value("distributed/politeness/waited_seconds", waited)

    def process_response(self, request: Request, response: Response) -> Response:
        self._release(request)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        self._release(request)

    def _release(self, request: Request) -> None:
        claim = request.meta.pop(CLAIM, None)
        if claim is not None:
            self.slots.release(*claim)
