"""A real browser (Debian's chromium via Playwright) goes through the whole subscription:
form, confirmation link from the caught email, preferences, unsubscribe. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import BASE_CONFIG
from feedpub.daemon.run import bind
from feedpub.jobs.publish import build_feeds
from feedpub.store import open_store
from feedpub.web.app import create_app
from web_helpers import ARTICLES, ServerThread, SmtpCatcher, link_in

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

if not CHROMIUM.exists():
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI is set but {CHROMIUM} is missing: apt-get install -y chromium",
                    pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium); CI is not set",
                allow_module_level=True)


@pytest.fixture
def browser_page() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_subscribe_confirm_preferences_unsubscribe_in_a_browser(make_site, browser_page) -> None:
    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    smtp = SmtpCatcher().start()
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    cfg = make_site(ARTICLES, config_text=BASE_CONFIG.replace(
        'base_url = "https://news.example.org/"', f'base_url = "{base}"') + smtp.config())
    build_feeds(cfg)
    server = ServerThread(create_app(cfg), sock).start()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    try:
        page.goto(base)
        assert page.title() == "Test Site"
        assert page.locator('link[rel="alternate"][href$="feed.xml"]').count() == 1
        page.screenshot(path=str(ARTIFACTS / "1-home.png"), full_page=True)

        page.get_by_role("link", name="Subscribe by email").click()
        page.get_by_label("Email address").fill("browser@example.org")
        page.get_by_label("Name").fill("Bee Rowser")
        page.get_by_label("Weekly digest").check()
        page.screenshot(path=str(ARTIFACTS / "2-subscribe.png"), full_page=True)
        page.get_by_role("button", name="Subscribe").click()
        assert page.get_by_role("heading", name="Check your inbox").is_visible()
        page.screenshot(path=str(ARTIFACTS / "3-check-inbox.png"), full_page=True)

        (message,) = smtp.wait(1)
        page.goto(link_in(message, "confirm"))  # opening the link changes nothing
        assert page.get_by_role("heading", name="Confirm your subscription").is_visible()
        page.get_by_role("button", name="Confirm my subscription").click()
        assert page.get_by_role("heading", name="Welcome!").is_visible()
        page.screenshot(path=str(ARTIFACTS / "4-welcome.png"), full_page=True)

        page.get_by_role("link", name="Change how often and which topics").click()
        page.get_by_label("Daily digest").check()
        page.get_by_label("web").check()
        page.get_by_role("button", name="Save preferences").click()
        assert page.get_by_text("Your preferences are saved.").is_visible()
        page.screenshot(path=str(ARTIFACTS / "5-preferences.png"), full_page=True)
        with open_store(cfg) as store:
            sub = store.get_subscriber("browser@example.org")
        assert sub is not None and sub.status == "active"
        assert sub.cadence == "daily" and sub.tags == ("web",) and sub.name == "Bee Rowser"

        page.get_by_role("link", name="Unsubscribe").click()
        page.get_by_role("button", name="Unsubscribe").click()
        assert page.get_by_role("heading", name="You are unsubscribed").is_visible()
        page.screenshot(path=str(ARTIFACTS / "6-unsubscribed.png"), full_page=True)
        with open_store(cfg) as store:
            sub = store.get_subscriber("browser@example.org")
        assert sub is not None and sub.status == "unsubscribed"
        assert not [p for p in problems if "Content Security Policy" in p], problems
    finally:
        server.stop()
        smtp.stop()


def test_local_home_page_shows_the_article_errors_banner(make_site, browser_page) -> None:
    """On a local site (loopback base_url) the home page lists what could not be published,
    visibly, above the page; the feeds and the rest of the page are still there."""
    page = browser_page
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    cfg = make_site({**ARTICLES, "broken.txt": "date 2024-02-30 Broken\n\nBody.\n"},
                    config_text=BASE_CONFIG.replace('base_url = "https://news.example.org/"',
                                                    f'base_url = "{base}"'))
    report = build_feeds(cfg)
    app = create_app(cfg)
    app.rebuilt(report.written, skipped=report.skipped)
    server = ServerThread(app, sock).start()
    try:
        page.goto(base)
        banner = page.locator("#feedpub-article-errors")
        assert banner.is_visible()
        assert "1 article(s) not published" in banner.inner_text()
        assert "broken.txt:1" in banner.inner_text()
        box = banner.bounding_box()
        assert box is not None and box["y"] < 50 and box["height"] > 20
        assert page.title() == "Test Site"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "article-errors-banner.png"))
    finally:
        server.stop()


def _site_articles() -> dict[str, str]:
    articles = {}
    for n in range(1, 26):
        tags = "harbour, city" if n % 5 == 0 else "city"
        articles[f"2024-03-{n:02d}-note-{n}.txt"] = (
            f"date 2024-03-{n:02d} Harbour note {n}\n\nTags: {tags}\n\n"
            f"What happened at the harbour on day {n}, in a few words.\n")
    return articles


def _landmarks_and_labels(page) -> None:
    """Accessibility basics on every page: one main, a banner, labelled navigation, one h1,
    a language, and every link with a name."""
    assert page.locator("main").count() == 1 and page.locator("header.site").count() == 1
    assert page.locator("h1").count() == 1
    for nav in page.locator("nav").all():
        assert nav.get_attribute("aria-label")
    assert page.locator("html").get_attribute("lang")
    for link in page.locator("a").all():
        assert link.inner_text().strip() or link.get_attribute("aria-label")


def test_browse_pages_tags_neighbours_archive_and_404(make_site, browser_page) -> None:
    from feedpub.jobs.mailing import send_digest
    from mail_helpers import article

    page = browser_page
    ARTIFACTS.mkdir(exist_ok=True)
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    cfg = make_site(_site_articles(), config_text=BASE_CONFIG.replace(
        'base_url = "https://news.example.org/"', f'base_url = "{base}"'))
    build_feeds(cfg)
    with open_store(cfg) as store:
        store.add_subscriber("reader@example.org", "Rea Der")
    from mail_helpers import NOW

    report = send_digest(cfg, "weekly", now=NOW,
                         articles=[article(1, title="Ferry adds a crossing")])
    assert report.sent == 1
    server = ServerThread(create_app(cfg), sock).start()
    try:
        page.goto(base)
        assert page.locator("h1").inner_text() == "Test Site"  # the title once
        assert page.get_by_text("Test Site", exact=True).count() == 1
        _landmarks_and_labels(page)
        page.screenshot(path=str(ARTIFACTS / "7-home.png"), full_page=True)
        page.get_by_role("link", name="Older articles").click()
        assert page.url == base + "page/2.html"
        assert page.locator("main article").count() == 5
        _landmarks_and_labels(page)
        page.screenshot(path=str(ARTIFACTS / "8-page-2.png"), full_page=True)

        page.locator("main article").first.get_by_role("link", name="harbour", exact=True).click()
        assert page.url == base + "tags/harbour.html"
        assert page.locator("main li").count() == 5
        _landmarks_and_labels(page)
        page.screenshot(path=str(ARTIFACTS / "9-tag.png"), full_page=True)

        page.get_by_role("link", name="Harbour note 5", exact=True).click()
        page.get_by_role("link", name="Harbour note 6", exact=True).click()
        assert page.url == base + "posts/2024-03-06-note-6.html"
        assert page.locator('a[rel="prev"]').inner_text() == "Harbour note 5"
        _landmarks_and_labels(page)
        page.screenshot(path=str(ARTIFACTS / "10-next-article.png"), full_page=True)

        page.get_by_role("link", name="Newsletter archive").click()
        assert page.url == base + "newsletter/index.html"
        _landmarks_and_labels(page)
        page.get_by_role("link", name=re.compile("Ferry adds a crossing")).click()
        assert page.get_by_text("Ferry adds a crossing").count() >= 1
        assert "Rea Der" not in page.content()
        page.screenshot(path=str(ARTIFACTS / "11-issue.png"), full_page=True)

        response = page.goto(base + "posts/deeper/nothing-here.html")
        assert response is not None and response.status == 404
        assert page.locator("h1").inner_text() == "Page not found"
        color = page.evaluate("getComputedStyle(document.body).maxWidth")
        assert color == "42rem" or color.endswith("px")  # the stylesheet loaded
        _landmarks_and_labels(page)
        page.screenshot(path=str(ARTIFACTS / "12-not-found.png"), full_page=True)
        page.get_by_role("link", name="Go to the articles").click()
        assert page.url == base + "index.html"
    finally:
        server.stop()
