"""The newsletter's public archive: record each issue without its personal parts before it
goes out, and write `public/newsletter/` from the store (so it survives a rebuild of public/).

`publish_archive` keeps its own manifest (`data/newsletter-manifest.json`): it writes only
files whose key changed or that are missing, and removes the files of issues no longer
listed; with `[newsletter] public_archive = false` it writes none and removes what it wrote.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ..articles.model import Article
from ..config import Config
from ..fsutil import atomic_write
from ..logfmt import log_event
from ..outputs import OutputFile
from ..site.newsletter import IssuePage, plan_newsletter

if TYPE_CHECKING:  # the build loads the store only when a database exists
    from ..store import Store
    from ..store.archive import PublicIssue
    from ..store.outbox import Issue

log = logging.getLogger("feedpub.archive")


def record_public_issue(cfg: Config, store: Store, issue: Issue,
                        articles: Sequence[Article]) -> None:
    """Render and store the public page of `issue` once (nothing personal in it)."""
    from ..mail.digest import render_digest
    from ..store.archive import IssueArchive, PublicIssue

    if not cfg.newsletter.public_archive:
        return
    archive = IssueArchive(store)
    if archive.has(issue.id):
        return
    wanted = set(issue.article_ids)
    chosen = [a for a in articles if a.id in wanted]
    if not chosen:
        return
    chosen.sort(key=lambda a: a.published, reverse=True)
    digest = render_digest(cfg, issue.cadence, chosen, issue.created, public=True)
    archive.save(PublicIssue(
        issue_id=issue.id, cadence=issue.cadence, created=issue.created,
        subject=digest.subject, html=digest.html, text=digest.text,
        articles=tuple((a.title, cfg.site.base_url + a.url_path) for a in chosen)))


def _manifest_path(cfg: Config) -> Path:
    return cfg.data_dir / "newsletter-manifest.json"


def _load(cfg: Config) -> dict[str, list[object]]:
    try:
        data = json.loads(_manifest_path(cfg).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _has_database(cfg: Config) -> bool:
    url = cfg.database_url
    prefix = "sqlite:///"
    return not url.startswith(prefix) or Path(url[len(prefix):]).exists()


@dataclass(frozen=True)
class ArchivePlan:
    """The files of `public/newsletter/` and how many sent issues they show."""

    outputs: list[OutputFile]
    issues: int


def plan_archive(cfg: Config, store: Store | None = None, *,
                 rendered: bool = False) -> ArchivePlan:
    """The archive's files as the store lists the sent issues now; with `rendered`, each
    file's bytes are made here (a build does it while its workers render)."""
    issues: list[PublicIssue] = []
    if cfg.newsletter.public_archive and (store is not None or _has_database(cfg)):
        from ..store import open_store
        from ..store.archive import IssueArchive

        if store is None:
            with open_store(cfg) as opened:
                issues = IssueArchive(opened).sent()
        else:
            issues = IssueArchive(store).sent()
    planned = [] if not cfg.newsletter.public_archive else plan_newsletter(
        [IssuePage(i.issue_id, i.cadence, i.created, i.subject, i.html, i.articles)
         for i in issues], cfg)
    if rendered:
        planned = [OutputFile(output.path, output.key, partial(bytes, output.render()))
                   for output in planned]
    return ArchivePlan(planned, len(issues))


def publish_archive(cfg: Config, store: Store | None = None,
                    plan: ArchivePlan | None = None) -> list[str]:
    """Write `public/newsletter/` from the store (as `plan` found it, when given); returns
    the paths written."""
    known = _load(cfg)
    if plan is None:
        plan = plan_archive(cfg, store)
    planned = plan.outputs
    public = cfg.public_dir
    written: list[str] = []
    manifest: dict[str, list[object]] = {}
    for output in planned:
        target = public / output.path
        entry = known.get(output.path)
        size = target.stat().st_size if target.exists() else -1
        if entry is None or entry[0] != output.key or entry[1] != size:
            data = output.render()
            atomic_write(target, data, fsync=False)
            size = len(data)
            written.append(output.path)
        manifest[output.path] = [output.key, size]
    for path in set(known) - set(manifest):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(public / path)
    if written or set(known) != set(manifest):
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(_manifest_path(cfg), json.dumps(manifest, sort_keys=True).encode(),
                     fsync=False)
        log_event(log, "newsletter_archive", issues=plan.issues, written=len(written))
    return written
