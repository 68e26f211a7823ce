"""One error hierarchy. Every message names the thing (file, line, key, host) and the fix.

Only `cli` maps these to exit codes and only `web` to HTTP statuses.
"""

from __future__ import annotations

from pathlib import Path


class FeedpubError(Exception):
    """Base class of every error feedpub raises on purpose."""

    exit_code = 1


class ConfigError(FeedpubError):
    """config.toml is missing, malformed, has an unknown key or a value of the wrong type."""

    exit_code = 2


class ArticleError(FeedpubError):
    """An article file cannot be published as it is."""

    def __init__(self, source: Path | str, message: str, line: int | None = None,
                 fix: str = "") -> None:
        self.source = str(source)
        self.line = line
        self.reason = message
        self.fix = fix
        where = f"{self.source}:{line}" if line is not None else self.source
        text = f"{where}: {message}"
        if fix:
            text += f" ({fix})"
        super().__init__(text)

    def __reduce__(self) -> tuple[type[ArticleError], tuple[str, str, int | None, str]]:
        return (type(self), (self.source, self.reason, self.line, self.fix))


class FeedError(FeedpubError):
    """A feed could not be built or does not validate."""


class CacheError(FeedpubError):
    """A file the last build left in the data folder (to be read again) is damaged."""


class StoreError(FeedpubError):
    """The database cannot be opened, migrated or written."""


class SubscriberError(FeedpubError):
    """A subscriber address or record is invalid."""


class DigestError(FeedpubError):
    """A digest cannot be rendered (template error, bad subject template)."""


class DeliveryError(FeedpubError):
    """A message could not be handed to the delivery backend (server down, auth failed)."""


class SchedulerError(FeedpubError):
    """The scheduler cannot start, e.g. another instance already owns this data set."""


class ClusterError(FeedpubError):
    """Several processes cannot share this store, e.g. `feedpub worker` on SQLite."""
