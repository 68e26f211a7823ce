"""Attachment lengths: read from the file when it lies under the site, else required.

The readers are pure and leave `length` out when the front matter does; here, where files may
be read, each such attachment gets the size of its file under `public/` (or `articles/`). An
attachment that is neither under the site nor given a length makes its article an error naming
the file and the fix; the other articles are published.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from urllib.parse import unquote, urljoin, urlsplit

from ..articles.model import Article, Attachment
from ..config import Config
from ..errors import ArticleError


def _local_path(cfg: Config, url: str) -> str | None:
    """The path of `url` below the site's base URL, or None when it points elsewhere."""
    absolute = urljoin(cfg.site.base_url, url)
    base = cfg.site.base_url
    if not absolute.startswith(base):
        return None
    path = unquote(urlsplit(absolute[len(base):]).path)
    return path if path and ".." not in path.split("/") else None


def _length(cfg: Config, article: Article, attachment: Attachment) -> Attachment:
    path = _local_path(cfg, attachment.url)
    if path is not None:
        for folder in (cfg.public_dir, cfg.articles_dir):
            try:
                return dataclasses.replace(attachment,
                                           length=os.stat(folder / path).st_size)
            except OSError:
                continue
    where = (f"no file {path} under {cfg.public_dir} or {cfg.articles_dir}" if path
             else "it is not under the site")
    raise ArticleError(article.source, f"the attachment {attachment.url} has no length and "
                       f"{where}", fix="add 'length: <bytes>' to the attachment, or put the "
                       "file under the site's public/ folder")


def fill_lengths(articles: Sequence[Article], cfg: Config,
                 ) -> tuple[list[Article], list[ArticleError]]:
    """`articles` with every attachment length known; the articles that cannot be are errors."""
    kept: list[Article] = []
    errors: list[ArticleError] = []
    for article in articles:
        if not article.attachments or all(a.length is not None for a in article.attachments):
            kept.append(article)
            continue
        try:
            filled = tuple(a if a.length is not None else _length(cfg, article, a)
                           for a in article.attachments)
        except ArticleError as exc:
            errors.append(exc)
            continue
        kept.append(dataclasses.replace(article, attachments=filled))
    return kept, errors
