"""Property tests: any Unicode text in titles, bodies, summaries, authors and tags yields
well-formed feeds in every format, and the Atom title survives exactly.

The article parser removes the characters feeds must not carry before articles reach the
feeds; the feed builder removes them again, so raw text (control characters included) is fed
to `plan_feeds` here, and to `parse_article` end to end.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

import feedpub
from feedpub.articles.model import Article
from feedpub.articles.scan import parse_article
from feedpub.config import parse_config
from feedpub.errors import ArticleError
from feedpub.feeds.writers import plan_feeds
from feedpub.feeds.xml import _rfc822

ATOM = "{http://www.w3.org/2005/Atom}"
SCHEMA_PATH = Path(feedpub.__file__).parent / "schemas" / "atom.rng"
SCHEMA = etree.RelaxNG(etree.parse(str(SCHEMA_PATH)))
CFG = parse_config('[site]\nbase_url = "https://news.example.org/"\n[feeds]\narchive_size = 2\n',
                   Path("."))
# What XML 1.0 forbids or discourages (C0 and C1 controls but tab, newline and carriage
# return; DEL; noncharacters) and U+FFFD, which validators flag as a decoding error.
_NONCHARACTERS = "".join(chr(plane << 16 | low) for plane in range(1, 17)
                         for low in (0xFFFE, 0xFFFF))
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffd-\uffff"
                       + _NONCHARACTERS + "]")

# Any code point but surrogates (which Python strings from a parser never hold), control
# characters included.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@st.composite
def articles(draw: st.DrawFn) -> list[Article]:
    count = draw(st.integers(min_value=0, max_value=4))
    out = []
    for n in range(count):
        body = draw(any_text)
        as_html = draw(st.booleans())
        out.append(Article(
            id=f"tag:news.example.org,2024:{n}", slug=f"p{n}", title=draw(any_text),
            published=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=count - n),
            html_utf8=(body if as_html else f"<p>{html.escape(body)}</p>").encode(
                "utf-8", "surrogatepass"),
            source=f"p{n}.md", summary=draw(any_text), author=draw(st.none() | any_text),
            tags=tuple(draw(st.lists(any_text, max_size=3))),
        ))
    return out


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(articles())
def test_any_text_gives_well_formed_feeds(entries: list[Article]) -> None:
    files = {f.path: f.render() for f in plan_feeds(entries, CFG)}
    assert {"feed.xml", "atom.xml", "feed.json"} <= set(files)
    for path, data in files.items():
        if path.endswith(".json"):
            doc = json.loads(data)
            assert len(doc["items"]) <= len(entries)
            continue
        root = etree.fromstring(data)  # well-formed XML or this raises
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        if root.tag == f"{ATOM}feed":
            assert SCHEMA.validate(root), (path, SCHEMA.error_log)
    atom = etree.fromstring(files["atom.xml"])
    for article, entry in zip(entries, atom.findall(f"{ATOM}entry"), strict=True):
        title = FORBIDDEN.sub("", article.title)
        assert (entry.findtext(f"{ATOM}title") or "") == (title if title.strip() else article.slug)


def _check_files(files: dict[str, bytes]) -> None:
    """Every XML file parses with lxml and feedparser (bozo 0), Atom validates (RFC 4287)."""
    for path, data in files.items():
        if path.endswith(".json"):
            json.loads(data)
            continue
        root = etree.fromstring(data)
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        if root.tag == f"{ATOM}feed":
            assert SCHEMA.validate(root), (path, SCHEMA.error_log)


# A title is one line of any text (files are UTF-8, so no surrogates).
one_line = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"),
                   min_size=1, max_size=40)
body_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=one_line, body=body_text, markdown=st.booleans())
@example(title=" Tom & Jerry <b>said</b>\x85\x9f\ufffe\U0010ffff\ufffd\x07 ", markdown=False,
         body="C1\x80 in\x9f the body\U0001fffe.\n\nSecond <p> & &amp; paragraph\x00.")
@example(title="Title only", body="", markdown=False)
def test_any_article_file_gives_valid_feeds_end_to_end(title: str, body: str,
                                                      markdown: bool) -> None:
    if markdown:
        text, source = f"---\ntitle: T\ndate: 2024-03-05\n---\n{body}\n", "2024-03-05-p.md"
    else:
        text, source = f"date 2024-03-05 {title}\n\n{body}\n", "2024-03-05-p.txt"
    try:
        article = parse_article(text, source, CFG.site)
    except ArticleError as exc:  # e.g. a title of spaces only: an error naming line and fix
        assert exc.line is not None and exc.fix
        return
    expected = "T" if markdown else FORBIDDEN.sub("", title).strip()
    assert article.title == expected
    files = {f.path: f.render() for f in plan_feeds([article], CFG)}
    _check_files(files)
    entry = etree.fromstring(files["atom.xml"]).find(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == expected
    assert etree.fromstring(files["feed.xml"]).findtext("channel/item/title") == expected
    assert json.loads(files["feed.json"])["items"][0]["title"] == expected
    for data in files.values():
        assert not FORBIDDEN.search(data.decode("utf-8"))


_OFFSETS = st.one_of(
    st.none(), st.sampled_from([UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/St_Johns")]),
    st.timedeltas(min_value=-timedelta(hours=23, minutes=59),
                  max_value=timedelta(hours=23, minutes=59)).map(timezone))


@given(moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
       zone=_OFFSETS)
def test_rss_dates_are_what_email_utils_writes(moment: datetime,
                                               zone: timezone | ZoneInfo | None) -> None:
    """RSS pubDate is formatted by hand, character for character as email.utils does it
    (offsets in seconds, which feeds never carry, are left to email.utils)."""
    moment = moment.replace(tzinfo=zone)
    assert _rfc822(moment) == format_datetime(moment)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=60))
@example('He said "no" \\ then\tleft.\n<p>“quoted” 😀 \u2028 \x7f</p>')
@example("\r\x00\x1f\x08\x0c")
def test_json_text_writes_what_orjson_writes(text: str) -> None:
    """The JSON Feed writer escapes a body's UTF-8 bytes itself; the result must be the
    bytes orjson makes of the text, whatever the text holds."""
    import orjson

    from feedpub.feeds.jsonfeed import json_text

    assert json_text(text.encode("utf-8")) == orjson.dumps(text)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1,
                        max_size=30), min_size=1, max_size=4))
def test_plain_text_bodies_give_the_same_json_as_text(paragraphs: list[str]) -> None:
    """A plain-text article's body goes into feed.json as bytes: the document must parse
    back to the body as text."""
    source = "date 2024-03-05 Title\n\n" + "\n\n".join(p + "." for p in paragraphs) + "\n"
    try:
        article = parse_article(source, "a.txt", CFG.site)
    except ArticleError:
        return
    files = {f.path: f.render() for f in plan_feeds([article], CFG)}
    item = json.loads(files["feed.json"])["items"][0]
    assert item.get("content_html", "") == article.html
