"""A real browser (Debian's chromium via Playwright) goes through the whole subscription:
form, confirmation link from the caught email, preferences, unsubscribe. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import os
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
