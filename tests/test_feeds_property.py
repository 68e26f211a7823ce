"""Property test: any Unicode text in titles, bodies, summaries, authors and tags yields
well-formed feeds in every format, and the Atom title survives exactly.

The article parser removes XML-illegal characters before articles reach the feeds; the
feed builder removes them again, so raw text (control characters included) is fed here.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

import feedpub
from feedpub.articles import Article
from feedpub.config import parse_config
from feedpub.feeds import plan_feeds

ATOM = "{http://www.w3.org/2005/Atom}"
SCHEMA_PATH = Path(feedpub.__file__).parent / "schemas" / "atom.rng"
SCHEMA = etree.RelaxNG(etree.parse(str(SCHEMA_PATH)))
CFG = parse_config('[site]\nbase_url = "https://news.example.org/"\n[feeds]\narchive_size = 2\n',
                   Path("."))
XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

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
            html=body if as_html else f"<p>{html.escape(body)}</p>",
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
        title = XML_ILLEGAL.sub("", article.title)
        assert (entry.findtext(f"{ATOM}title") or "") == (title if title.strip() else article.slug)
