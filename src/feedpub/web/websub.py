"""WebSub publisher side: tell the hub which feed URLs changed after a rebuild."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from urllib.parse import urlencode

from .. import __version__
from ..logfmt import log_event
from .static import content_type_for

log = logging.getLogger("feedpub.websub")


def changed_feed_urls(base_url: str, written: Iterable[str]) -> list[str]:
    """Absolute URLs of the feed files among the paths a build wrote."""
    return [base_url + path for path in written if content_type_for(path)[1]]


def ping_hub(hub: str, urls: Iterable[str], *, attempts: int = 3, timeout: float = 10.0,
             backoff: float = 1.0) -> list[str]:
    """POST hub.mode=publish for each URL, retrying failures; returns the URLs not accepted."""
    failed = []
    for url in urls:
        body = urlencode({"hub.mode": "publish", "hub.url": url}).encode("ascii")
        for attempt in range(1, attempts + 1):
            request = urllib.request.Request(
                hub, data=body, method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "User-Agent": f"feedpub/{__version__}"})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status, reason = exc.code, str(exc)
            except (urllib.error.URLError, OSError) as exc:
                status, reason = 0, str(exc)
            else:
                reason = ""
            if 200 <= status < 300:
                log_event(log, "websub_ping", hub=hub, url=url, status=status, attempt=attempt)
                break
            retryable = status == 0 or status == 429 or status >= 500
            log_event(log, "websub_ping_failed", level=logging.WARNING, hub=hub, url=url,
                      status=status, attempt=attempt, reason=reason)
            if not retryable or attempt == attempts:
                failed.append(url)
                break
            time.sleep(backoff * 2 ** (attempt - 1))
    return failed
