"""What a crawl imports as it starts: what it uses, when it uses it.

Scrapy imports every component its settings name before asking the component
whether it is on (and again to match each key of ``EXTENSIONS`` and the middleware
settings to its base list, even a key set to None), and imports and builds its
HTTP(S) download handler as the crawl starts.  For a crawl of a near-empty corpus
that was a quarter of its CPU:

- the remote control extension, off here (``REMOTE_CONTROL_ENABLED``), imports
  aiohttp: 0.25 s;
- the cookies middleware, off here (``COOKIES_ENABLED``), imports tldextract and
  requests: 0.09 s;
- the HTTP/1.1 handler (Twisted's HTTP client, TLS context factories: 0.2 s) is
  never used by a crawl answered by the replay middleware (``REPLAY_DIR``), and is
  imported for ``RETRY_EXCEPTIONS`` too (its ``TunnelError``).

`LeanStartup`, a Scrapy add-on (``ADDONS``: it runs before any component is
loaded), leaves each component whose own setting is off out of Scrapy's base lists,
so that it is never imported (``-s COOKIES_ENABLED=True`` still brings the cookies
back), and puts `LazyHttpDownloadHandler` in place of Scrapy's HTTP(S) handler: it
builds Scrapy's own on the first request that reaches the network.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from scrapy.utils.misc import build_from_crawler, load_object

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

# Scrapy's HTTP(S) download handler, and its exception in RETRY_EXCEPTIONS.
HTTP_HANDLER_MODULE = "scrapy.core.downloader.handlers.http11"
HTTP_HANDLER = f"{HTTP_HANDLER_MODULE}.HTTP11DownloadHandler"
TUNNEL_ERROR = f"{HTTP_HANDLER_MODULE}.TunnelError"

# (base setting, component, the boolean setting that switches it on): components
# left out of their base list while their setting is off.
SWITCHED_OFF = (
    ("EXTENSIONS_BASE", "scrapy.extensions.remote_control.RemoteControl", "REMOTE_CONTROL_ENABLED"),
    (
        "DOWNLOADER_MIDDLEWARES_BASE",
        "scrapy.downloadermiddlewares.cookies.CookiesMiddleware",
        "COOKIES_ENABLED",
    ),
)


class LeanStartup:
    """A Scrapy add-on: components that are off are not imported, and Scrapy's HTTP(S)
    handler only when a request needs it."""

    def update_settings(self, settings: BaseSettings) -> None:
        for base, component, switch in SWITCHED_OFF:
            components = dict(settings[base] or {})
            if component in components and not settings.getbool(switch):
                del components[component]
                _replace(settings, base, components)
        handlers = dict(settings["DOWNLOAD_HANDLERS_BASE"] or {})
        lazy = f"{LazyHttpDownloadHandler.__module__}.{LazyHttpDownloadHandler.__name__}"
        for scheme in ("http", "https"):
            if handlers.get(scheme) == HTTP_HANDLER:
                handlers[scheme] = lazy
        _replace(settings, "DOWNLOAD_HANDLERS_BASE", handlers)
        retried = [
            TunnelErrorWhenLoaded if exception == TUNNEL_ERROR else exception
            for exception in settings.getlist("RETRY_EXCEPTIONS")
        ]
        _replace(settings, "RETRY_EXCEPTIONS", retried)


def _replace(settings: BaseSettings, name: str, value: Any) -> None:
    """Set `name` to `value` at the priority it was given with (an add-on's own
    priority would lose to the project's)."""
    settings.set(name, value, priority=settings.getpriority(name) or "addon")


class LazyHttpDownloadHandler:
    """Stands in for Scrapy's HTTP/1.1 handler: Scrapy builds a lazy handler on the
    first request of its scheme that reaches the downloader, and `from_crawler` then
    imports and builds the real one, which serves every request of that scheme."""

    lazy = True

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
        return build_from_crawler(load_object(HTTP_HANDLER), crawler)


class _MatchesOnceImported(type):
    """``isinstance`` against an exception class that is looked up only if its module
    has been imported: an exception of a module nobody imported cannot have been
    raised."""

    module: str
    name: str

    def __instancecheck__(cls, instance: Any) -> bool:
        real = getattr(sys.modules.get(cls.module), cls.name, None)
        return real is not None and isinstance(instance, real)

    def __subclasscheck__(cls, subclass: Any) -> bool:
        real = getattr(sys.modules.get(cls.module), cls.name, None)
        return real is not None and issubclass(subclass, real)


class TunnelErrorWhenLoaded(Exception, metaclass=_MatchesOnceImported):
    """Scrapy's ``TunnelError`` (a proxy refused the CONNECT) in ``RETRY_EXCEPTIONS``,
    without importing the HTTP/1.1 handler that defines it."""

    module = HTTP_HANDLER_MODULE
    name = "TunnelError"
