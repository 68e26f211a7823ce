"""`feedpub check`: lint the articles and validate the feeds already built in public/."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lxml import etree

from ..config import Config
from .publish import load_site

ATOM_NS = "http://www.w3.org/2005/Atom"


@dataclass
class CheckReport:
    """Problems found, each naming a file; `checked` counts feeds validated."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    articles: int = 0
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@lru_cache(maxsize=1)
def _atom_schema() -> etree.RelaxNG | None:
    try:
        data = resources.files("feedpub").joinpath("schemas/atom.rng").read_bytes()
    except (FileNotFoundError, OSError):
        return None
    return etree.RelaxNG(etree.fromstring(data))


def validate_feed(name: str, data: bytes) -> list[str]:
    """Problems with one built feed file (well-formedness, Atom schema, JSON Feed shape)."""
    if name.endswith(".json"):
        try:
            doc = json.loads(data)
        except ValueError as exc:
            return [f"{name}: not valid JSON: {exc}"]
        missing = [k for k in ("version", "title", "items") if k not in doc]
        return [f"{name}: JSON Feed lacks '{k}'" for k in missing]
    try:
        root = etree.fromstring(data)
    except etree.XMLSyntaxError as exc:
        return [f"{name}: not well-formed XML: {exc}"]
    if root.tag == f"{{{ATOM_NS}}}feed":
        schema = _atom_schema()
        if schema is not None and not schema.validate(root):
            return [f"{name}: Atom schema (RFC 4287): {e.message} (line {e.line})"
                    for e in schema.error_log]
    elif root.tag != "rss":
        return [f"{name}: neither an RSS nor an Atom document (root <{root.tag}>)"]
    return []


def _feed_files(public: Path) -> list[Path]:
    names = ["feed.xml", "atom.xml", "feed.json"]
    files = [public / n for n in names if (public / n).exists()]
    for folder in ("tags", "archive"):
        files.extend(sorted(p for p in (public / folder).glob("*")
                            if p.suffix in (".xml", ".atom", ".json")))
    return files


def check_site(cfg: Config, now: datetime | None = None) -> CheckReport:
    """Lint every article and validate every built feed; nothing is written."""
    report = CheckReport()
    result = load_site(cfg)
    report.articles = len(result.articles)
    report.problems.extend(str(e) for e in result.errors)
    report.warnings.extend(w for a in result.articles for w in a.warnings)
    now = now or datetime.now(UTC)
    report.warnings.extend(f"{a.source}: draft, not published" for a in result.articles
                           if a.draft)
    report.warnings.extend(f"{a.source}: dated in the future, published at "
                           f"{a.published.isoformat()}" for a in result.articles
                           if not a.draft and a.published > now)
    from .deliverability import dkim_problems, honesty_warnings  # mail, only when checking

    dkim, _ = dkim_problems(cfg)
    report.problems.extend(dkim)
    report.warnings.extend(honesty_warnings(cfg))
    public = cfg.public_dir
    files = _feed_files(public)
    if not files:
        report.problems.append(f"{public}: no feeds found (run 'feedpub build' first)")
    for path in files:
        report.checked += 1
        report.problems.extend(validate_feed(path.relative_to(public).as_posix(),
                                             path.read_bytes()))
    return report
