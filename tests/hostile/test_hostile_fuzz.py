"""Short fuzzing runs (Hypothesis): `parse_article` on generated hostile text, and the
subscribe form over real HTTP. Each is bounded to well under a minute.

The property: nothing but an ArticleError ever comes out of `parse_article`, and the
subscribe form answers with a page (never a 500), storing only valid addresses with clean
names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpub.articles.scan import parse_article
from feedpub.config import SiteConfig
from feedpub.errors import ArticleError
from feedpub.store import open_store
from web_helpers import ARTICLES, SmtpCatcher, serve

SITE = SiteConfig(base_url="https://news.example.org/", timezone="Europe/Berlin")

FRAGMENTS = [
    "---\n", "...\n", "title: ", "date: ", "tags: ", "summary: ", "updated: ", "draft: ",
    "id: ", "date 2024-03-05 ", "2024-03-05", "T10:00", "+23:59", "+14:00", "-00:00:30",
    "[", "]", "{", "}", "&a ", "*a", "!!python/object:os.system ", "<div>", "</div>", "<li>",
    "<script>", "]]>", "\u202e", "\x00", "\x85", "\ud800", "\ufeff", "\r\n", "\n\n", "    ",
    "By: ", "Tags: ", "Draft: yes", "> ", "- ", "* ", "`", "```", "<!--", "&#0;", "&amp;",
]
texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)),
                 max_size=60).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, suffix=st.sampled_from([".txt", ".md"]))
def test_parse_article_raises_nothing_but_article_errors(text: str, suffix: str) -> None:
    source = "fuzz" + suffix
    try:
        article = parse_article(text, source, SITE)
    except ArticleError as exc:
        assert exc.source == source
        return
    assert article.title.strip()
    offset = article.published.utcoffset()
    assert offset is not None and abs(offset.total_seconds()) <= 14 * 3600


@pytest.fixture(scope="module")
def form_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    from conftest import BASE_CONFIG
    from feedpub.config import load_config

    root = tmp_path_factory.mktemp("fuzz-site")
    catcher = SmtpCatcher().start()
    (root / "config.toml").write_text(BASE_CONFIG + catcher.config()
                                      + "[web]\nsubscribe_rate = 100000\n")
    (root / "articles").mkdir()
    for name, body in ARTICLES.items():
        (root / "articles" / name).write_text(body)
    cfg = load_config(root / "config.toml")
    with serve(cfg) as (server, _):
        yield server.url, cfg
    catcher.stop()


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(email=st.one_of(st.emails().map(str), st.text(max_size=40)),
       name=st.one_of(st.text(max_size=60), st.sampled_from(
           ["=?utf-8?q?=0D=0A?=", "a\r\nBcc: x@example.org", "\u202e", "x" * 500])),
       cadence=st.one_of(st.sampled_from(["daily", "weekly"]), st.text(max_size=10)))
def test_the_subscribe_form_never_fails(form_server: tuple[str, object], email: str,
                                        name: str, cadence: str) -> None:
    url, cfg = form_server
    with httpx.Client(base_url=url, timeout=10) as client:
        form = client.get("subscribe")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        response = client.post("subscribe", data={"email": email, "name": name,
                                                  "cadence": cadence,
                                                  "csrf_token": token.group(1)})
    assert response.status_code in (200, 400), response.text
    assert "content-security-policy" in response.headers
    with open_store(cfg) as store:  # type: ignore[arg-type]
        for sub in store.iter_subscribers():
            assert "@" in sub.email
            assert sub.name is None or not any(
                unicodedata.category(ch) in ("Cc", "Cf") for ch in sub.name)
