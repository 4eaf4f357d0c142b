"""Many workers, one crawl: scrapy-redis's scheduler and duplicate filter, with
leases, seeding once, per-worker registration and politeness across workers.

Off unless ``REDIS_URL`` is set (docs/scaling.md).  The add-on `Distributed`
(in ``ADDONS``) then turns it on for any spider; unset, it changes nothing and no
module of this package but this one is imported.

- `addon`: the switch (settings only);
- `frontier`: the crawl's keys and Lua scripts in Redis (queue, leases, workers);
- `scheduler`: scrapy-redis's scheduler, leasing what it pops;
- `worker`: the worker's registration, heartbeat, acknowledgements and end, and the
  spider middleware that seeds the crawl once;
- `politeness`: per-host delay and concurrency across all workers.
"""

from __future__ import annotations

from news_archive.crawler.distributed.addon import Distributed

__all__ = ["Distributed"]
