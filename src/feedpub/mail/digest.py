"""Newsletter issues: which articles go out, and the issue rendered once for all subscribers.

Pure: articles and config in, a `Digest` out. The issue is rendered (Jinja + css-inline)
once; per-subscriber values (name, unsubscribe and preferences links) are markers that
`Personalizer` fills in with plain string joins, so a 10,000-subscriber issue costs one render.
"""

from __future__ import annotations

import html
import re
import string
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from urllib.parse import urljoin

import css_inline
import jinja2
import lxml.html
from markupsafe import Markup

from ..articles.media import first_image
from ..articles.model import Article
from ..config import Config
from ..errors import DigestError
from ..i18n import format_day, install
from .model import Digest
from .personalize import FIELDS, MARKER, clean_header_text, public_values, view_url
from .plaintext import html_to_text

PERIODS = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
SUBJECT_KEYS = ("site", "count", "first_title", "cadence", "date")


def period(cadence: str) -> timedelta:
    """How far back the first issue of a cadence reaches."""
    try:
        return PERIODS[cadence]
    except KeyError as exc:
        raise DigestError(f"unknown cadence {cadence!r} (use 'daily' or 'weekly')") from exc


def select_articles(articles: Iterable[Article], *, since: datetime, now: datetime,
                    already_sent: Iterable[str], tags: Sequence[str] = (),
                    limit: int = 50) -> list[Article]:
    """Articles published in (since, now], never sent before in this cadence, oldest last.

    `articles` is newest first; the result keeps that order and keeps the newest `limit`.
    `tags` (lower-case) keeps only articles carrying one of them; empty keeps all.
    """
    sent = set(already_sent)
    wanted = {t.lower() for t in tags}
    chosen = [
        a for a in articles
        if since < a.published <= now and a.id not in sent and not a.draft
        and (not wanted or wanted & {t.lower() for t in a.tags})
    ]
    chosen.sort(key=lambda a: a.published, reverse=True)
    return chosen[:limit]


def render_subject(cfg: Config, cadence: str, articles: Sequence[Article],
                   now: datetime) -> str:
    """The subject from `[digest] subject`; an unknown placeholder is a DigestError."""
    values = {
        "site": cfg.site.title, "count": len(articles),
        "first_title": articles[0].title if articles else "", "cadence": cadence,
        "date": now.astimezone(cfg.site.tz).date().isoformat(),
    }
    template = cfg.digest.subject
    try:
        for _, key, _, _ in string.Formatter().parse(template):
            if key is not None and key.split(".")[0].split("[")[0] not in values:
                raise KeyError(key)
        subject = template.format_map(values)
    except KeyError as exc:
        raise DigestError(
            f"digest.subject: unknown placeholder {{{exc.args[0]}}} in {template!r} "
            f"(known: {', '.join('{' + k + '}' for k in SUBJECT_KEYS)})"
        ) from exc
    except (ValueError, IndexError, AttributeError) as exc:
        raise DigestError(f"digest.subject: cannot use {template!r}: {exc} "
                          "(write placeholders as {name}; double braces for a literal {)") from exc
    return clean_header_text(subject)


_LEAD = re.compile(r"(\s*)((?:[-*\u2022]|\d{1,3}[.)])\s+|>\s?)?")
_STRUCTURE = re.compile(r"\s*(?:(?:[-*\u2022]|\d{1,3}[.)])\s|>)|  |\t|[=-]{3,}\s*$|\* \* \*")
_KEEP = re.compile(r"(?:    |\t)(?!\s*(?:[-*\u2022]|\d{1,3}[.)])\s)|\s*(?:[=-]{3,}|\* \* \*)\s*$")


def _wrap_line(line: str, width: int, indent: str) -> str:
    """One structured line: a list item or quote wrapped under its own marker."""
    if _KEEP.match(line):  # preformatted text, heading underline, rule: as it is
        return (indent + line).rstrip()
    lead = _LEAD.match(line)
    assert lead is not None  # every part of the pattern is optional
    marker = lead.group(2) or ""
    hanging = lead.group(1) + ("> " if marker.startswith(">") else " " * len(marker))
    body = " ".join(line[lead.end():].split())
    if not body:
        return (indent + lead.group(0)).rstrip()
    return textwrap.fill(body, width=width, initial_indent=indent + lead.group(0),
                         subsequent_indent=indent + hanging, break_long_words=False,
                         break_on_hyphens=False)


def wrap_text(value: str, width: int = 72, indent: str = "") -> str:
    """Re-flow plain text paragraph by paragraph; long URLs are never broken.

    A paragraph with structure (list items `- ` / `1. `, quotes `> `, indented lines,
    heading underlines) keeps its lines; each is wrapped under its own marker.
    """
    paragraphs = re.split(r"\n\s*\n", value.strip())
    out = []
    for para in paragraphs:
        lines = para.splitlines()
        if any(_STRUCTURE.match(line) for line in lines):
            out.append("\n".join(_wrap_line(line.rstrip(), width, indent) for line in lines))
            continue
        out.append(textwrap.fill(" ".join(para.split()), width=width, initial_indent=indent,
                                 subsequent_indent=indent, break_long_words=False,
                                 break_on_hyphens=False))
    return "\n\n".join(out)


def absolute_html(fragment: str, base: str) -> str:
    """Make every link and image source in an HTML fragment absolute against `base`."""
    if not fragment.strip():
        return ""
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    root.make_links_absolute(base, resolve_base_href=False)
    inner = (root.text and html.escape(root.text, quote=False)) or ""
    return inner + "".join(lxml.html.tostring(child, encoding="unicode") for child in root)


def make_environment(cfg: Config) -> jinja2.Environment:
    """Operator templates folder first, then the built-in defaults; HTML autoescaped."""
    loader = jinja2.ChoiceLoader([
        jinja2.FileSystemLoader(str(cfg.templates_dir)),
        jinja2.PackageLoader("feedpub", "default_templates"),
    ])
    env = jinja2.Environment(
        loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2", "htm"),
                                            default_for_string=True, default=False),
    )
    env.filters["wrap"] = wrap_text
    return install(env, cfg.site.language)


def _article_context(cfg: Config, article: Article) -> dict[str, object]:
    url = urljoin(cfg.site.base_url, article.url_path)
    text = article.html
    body = absolute_html(text, url)
    image = article.image  # shown above the body, unless the body starts with it
    if image and first_image(text) == image:
        image = ""
    return {
        "id": article.id, "title": clean_header_text(article.title), "url": url,
        "html": Markup(body),
        # The text part is rendered from the sanitized, absolute-link HTML (never the
        # Markdown source): links as `text <URL>`, lists and headings kept.
        "text": html_to_text(body) or article.summary, "summary": article.summary,
        "author": article.author, "tags": article.tags,
        "date": format_day(article.published, cfg.site.tz, cfg.site.language),
        "published": article.published,
        "image": urljoin(cfg.site.base_url, image) if image else "",
    }


def _render(env: jinja2.Environment, name: str, context: Mapping[str, object]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise DigestError(f"{exc.filename or name}:{exc.lineno}: template syntax error: "
                          f"{exc.message} (fix the template)") from exc
    except jinja2.TemplateError as exc:
        raise DigestError(f"{name}: cannot render the digest: {exc} (fix the template; "
                          f"known names: site, cadence, count, subject, articles, postal_address, "
                          f"{', '.join(FIELDS)})") from exc


def render_digest(cfg: Config, cadence: str, articles: Sequence[Article],
                  now: datetime, *, public: bool = False) -> Digest:
    """Render one issue: subject, inlined HTML and plain text, with per-subscriber markers.

    `public`: the issue's page in the newsletter archive, from the same templates with every
    personal part left out (no name, no unsubscribe or preferences link, no marker)."""
    if not articles:
        raise DigestError("a digest needs at least one article")
    subject = render_subject(cfg, cadence, articles, now)
    context: dict[str, object] = {
        "site": {"title": cfg.site.title, "url": cfg.site.base_url,
                 "description": cfg.site.description, "language": cfg.site.language},
        "cadence": cadence, "count": len(articles), "subject": subject,
        "date": format_day(now, cfg.site.tz, cfg.site.language),
        "articles": [_article_context(cfg, a) for a in articles],
        "postal_address": cfg.digest.postal_address,
        **{name: MARKER.format(name) for name in FIELDS},
        "public": public,
        "view_url": "" if public or not cfg.newsletter.public_archive else view_url(cfg),
    }
    if public:
        context.update(public_values())
    env = make_environment(cfg)
    html_body = _render(env, "digest.html.j2", context)
    try:
        inliner = css_inline.CSSInliner(load_remote_stylesheets=False)
        html_body = inliner.inline(html_body)
    except ValueError as exc:
        raise DigestError(f"digest.html.j2: CSS cannot be inlined: {exc}") from exc
    text_body = _render(env, "digest.txt.j2", context)
    return Digest(cadence=cadence, subject=subject, html=html_body, text=text_body,
                  article_ids=tuple(a.id for a in articles))
