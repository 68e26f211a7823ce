"""The subscription flow over real HTTP with the mail caught by a real SMTP server:
double opt-in, no address disclosure, CSRF, rate limit, one-click unsubscribe, preferences,
tampered and expired tokens."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from lxml import html

from feedpub.config import Config
from feedpub.mail.tokens import address_digest, link
from feedpub.store import open_store
from web_helpers import ARTICLES, SmtpCatcher, link_in, serve

BOTH_DATABASES = True  # each test runs on SQLite and on PostgreSQL (conftest)


@pytest.fixture
def smtp() -> Iterator[SmtpCatcher]:
    catcher = SmtpCatcher().start()
    yield catcher
    catcher.stop()


def _site(make_site, smtp: SmtpCatcher, extra: str = "") -> Config:
    return make_site(ARTICLES, extra=smtp.config() + extra)


def _local(url: str, server_url: str) -> str:
    """Point an emailed absolute link at the test server."""
    parts = urlsplit(url)
    return server_url + parts.path.lstrip("/") + "?" + parts.query


def _form_token(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def _subscribe(client: httpx.Client, email: str, **fields: str) -> httpx.Response:
    form = client.get("subscribe")
    assert form.status_code == 200
    return client.post("subscribe", data={"email": email, "csrf_token": _form_token(form.text),
                                          **fields})


def _confirm(client: httpx.Client, url: str) -> httpx.Response:
    """Open a confirm link's page and press its button."""
    page = client.get(url)
    assert page.status_code == 200, page.text
    if "Welcome" in page.text:  # already confirmed: no button
        return page
    return client.post(url, data={"csrf_token": _form_token(page.text)})


def _status(cfg: Config, email: str) -> str | None:
    with open_store(cfg) as store:
        sub = store.get_subscriber(email)
    return sub.status if sub else None


def test_double_opt_in_end_to_end(make_site, smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp)
    with serve(cfg) as (server, app), httpx.Client(base_url=server.url, timeout=10) as client:
        page = client.get("subscribe")
        doc = html.fromstring(page.text)
        assert doc.xpath('//label[@for="email"]') and doc.xpath('//input[@id="email"]')
        response = _subscribe(client, "Reader@Example.ORG", name="Rea Der", cadence="daily")
        assert response.status_code == 200
        assert "Check your inbox" in response.text
        assert _status(cfg, "Reader@example.org") == "pending"
        (message,) = smtp.wait(1)
        assert message["To"].addresses[0].addr_spec == "Reader@example.org"
        assert "Confirm" in message["Subject"]
        confirm = link_in(message, "confirm")
        assert confirm.startswith("https://news.example.org/confirm?token=")
        opened = client.get(_local(confirm, server.url))  # as a mail scanner does
        assert opened.status_code == 200 and "Confirm my subscription" in opened.text
        assert _status(cfg, "Reader@example.org") == "pending"  # opening changes nothing
        forged = client.post(_local(confirm, server.url), data={"csrf_token": "x"})
        assert forged.status_code == 403
        assert _status(cfg, "Reader@example.org") == "pending"
        welcome = _confirm(client, _local(confirm, server.url))
        assert welcome.status_code == 200 and "Welcome" in welcome.text
        assert "daily" in welcome.text
        assert _status(cfg, "Reader@example.org") == "active"
        again = client.get(_local(confirm, server.url))  # a second click changes nothing
        assert again.status_code == 200 and "Welcome" in again.text
        metrics = client.get("metrics").text
        assert 'feedpub_emails_sent_total{kind="confirm"} 1.0' in metrics


def test_response_does_not_reveal_existing_subscribers(make_site, smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp)
    with open_store(cfg) as store:
        store.add_subscriber("known@example.org", status="active")
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        known = _subscribe(client, "known@example.org")
        new = _subscribe(client, "new@example.org")
        assert known.status_code == new.status_code == 200
        assert known.text == new.text
        assert dict(known.headers).keys() == dict(new.headers).keys()
    messages = smtp.wait(2)
    by_rcpt = {m["To"].addresses[0].addr_spec: m for m in messages}
    assert "preferences?token=" in by_rcpt["known@example.org"].get_content()
    assert "confirm?token=" in by_rcpt["new@example.org"].get_content()
    assert _status(cfg, "known@example.org") == "active"  # nothing changed for them


def test_csrf_is_required(make_site, smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp)
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        token = _form_token(client.get("subscribe").text)
        missing = client.post("subscribe", data={"email": "a@example.org"})
        assert missing.status_code == 403
        forged = client.post("subscribe", data={"email": "a@example.org",
                                                "csrf_token": token[:-2] + "xx"})
        assert forged.status_code == 403
        with httpx.Client(base_url=server.url) as other:  # a token without its cookie
            stolen = other.post("subscribe", data={"email": "a@example.org",
                                                   "csrf_token": token})
            assert stolen.status_code == 403
    assert _status(cfg, "a@example.org") is None
    assert smtp.messages == []


def test_invalid_address_shows_the_form_again(make_site, smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp)
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        response = _subscribe(client, "not an address")
        assert response.status_code == 400
        assert "valid email address" in response.text
        assert 'value="not an address"' in response.text
    assert smtp.messages == []


def test_subscribing_is_rate_limited_per_client(make_site, smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp, "[web]\nsubscribe_rate = 2\n")
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        assert _subscribe(client, "one@example.org").status_code == 200
        assert _subscribe(client, "two@example.org").status_code == 200
        third = _subscribe(client, "three@example.org")
        assert third.status_code == 429
        assert "Too many" in third.text
        retry_after = int(third.headers["retry-after"])
        assert 0 < retry_after <= 3600
    assert _status(cfg, "three@example.org") is None


def test_the_rate_limit_counts_the_client_a_trusted_proxy_names(make_site,
                                                               smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp, '[web]\nsubscribe_rate = 1\ntrusted_proxies = ["127.0.0.1"]\n')
    with serve(cfg) as (server, _):
        def from_client(address: str, email: str) -> int:
            # Behind a reverse proxy on this machine: the proxy connects from 127.0.0.1.
            with httpx.Client(base_url=server.url, timeout=10,
                              headers={"X-Forwarded-For": address}) as client:
                return _subscribe(client, email).status_code

        assert from_client("203.0.113.5", "a@example.org") == 200
        assert from_client("203.0.113.5", "b@example.org") == 429  # the same reader again
        assert from_client("203.0.113.6", "c@example.org") == 200  # another reader
    assert _status(cfg, "b@example.org") is None and _status(cfg, "c@example.org") == "pending"


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(make_site,
                                                              smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp, "[web]\nsubscribe_rate = 2\n")  # trusted_proxies = []
    with serve(cfg) as (server, _):
        def spoofed(address: str, email: str) -> int:
            with httpx.Client(base_url=server.url, timeout=10,
                              headers={"X-Forwarded-For": address}) as client:
                return _subscribe(client, email).status_code

        # Each request claims another client; all are counted as the one that connects.
        assert [spoofed(f"203.0.113.{n}", f"s{n}@example.org") for n in range(4)] == [
            200, 200, 429, 429]
    assert _status(cfg, "s2@example.org") is None


def test_one_click_unsubscribe_and_the_get_page(make_site, smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp)
    with open_store(cfg) as store:
        sub, _ = store.add_subscriber("leaver@example.org", status="active")
    url = link(cfg, "unsubscribe", sub.id, sub.email)
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        local = _local(url, server.url)
        page = client.get(local)
        assert page.status_code == 200
        doc = html.fromstring(page.text)
        assert len(doc.xpath("//main//form")) == 1
        assert len(doc.xpath("//main//form//button")) == 1
        assert _status(cfg, "leaver@example.org") == "active"  # GET changes nothing
        with httpx.Client(timeout=10) as mail_client:  # no cookie, no CSRF token: RFC 8058
            response = mail_client.post(local, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        assert _status(cfg, "leaver@example.org") == "unsubscribed"


def test_unsubscribe_button_needs_csrf(make_site, smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp)
    with open_store(cfg) as store:
        sub, _ = store.add_subscriber("b@example.org", status="active")
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        local = _local(link(cfg, "unsubscribe", sub.id, sub.email), server.url)
        assert client.post(local, data={}).status_code == 403
        assert _status(cfg, "b@example.org") == "active"
        token = _form_token(client.get(local).text)
        done = client.post(local, data={"csrf_token": token})
        assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert _status(cfg, "b@example.org") == "unsubscribed"


def test_tampered_or_wrong_tokens_give_400_and_change_nothing(make_site, smtp) -> None:
    cfg = _site(make_site, smtp)
    with open_store(cfg) as store:
        sub, _ = store.add_subscriber("p@example.org", status="pending")
    confirm = link(cfg, "confirm", sub.id, sub.email)
    unsub = link(cfg, "unsubscribe", sub.id, sub.email)
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        tampered = _local(confirm[:-3] + ("AAA" if not confirm.endswith("AAA") else "BBB"),
                          server.url)
        for bad in (tampered, server.url + "confirm?token=",
                    server.url + "confirm?" + urlsplit(unsub).query):  # wrong purpose
            response = client.get(bad)
            assert response.status_code == 400, bad
            assert "This link does not work" in response.text
            assert "Nothing was changed" in response.text
        assert _status(cfg, "p@example.org") == "pending"
        bad_unsub = _local(unsub.replace("token=", "token=x"), server.url)
        assert client.post(bad_unsub, data={"List-Unsubscribe": "One-Click"}).status_code == 400
        for form in ({}, {"csrf_token": "forged"}):  # the button form, without a valid CSRF
            response = client.post(bad_unsub, data=form)
            assert response.status_code == 400, form
            assert "This link does not work" in response.text
            assert "Nothing was changed" in response.text
        bad_prefs = server.url + "preferences?" + urlsplit(unsub).query
        assert client.get(bad_prefs).status_code == 400
    assert _status(cfg, "p@example.org") == "pending"


def test_expired_token_is_refused(make_site, smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp, '[web]\nconfirm_max_age = "1m"\n')
    with open_store(cfg) as store:
        sub, _ = store.add_subscriber("late@example.org", status="pending")
    confirm = _signed_days_ago(cfg, "confirm", [sub.id, address_digest(sub.email),
                                                sub.confirm_nonce], 2 / 1440)
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        response = client.get(_local(confirm, server.url))
        assert response.status_code == 400
        assert "expired" in response.text
    assert _status(cfg, "late@example.org") == "pending"


def test_preferences_page_changes_cadence_and_tags(make_site, smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp)
    with open_store(cfg) as store:
        sub, _ = store.add_subscriber("pref@example.org", status="active")
    url = link(cfg, "preferences", sub.id, sub.email)
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        local = _local(url, server.url)
        page = client.get(local)
        assert page.status_code == 200
        doc = html.fromstring(page.text)
        assert sorted(doc.xpath('//input[@name="tags"]/@value')) == ["python", "web"]
        saved = client.post(local, data={"csrf_token": _form_token(page.text),
                                         "cadence": "daily", "tags": ["web"]})
        assert saved.status_code == 200 and "saved" in saved.text
        assert client.post(local, data={"cadence": "weekly"}).status_code == 403
    with open_store(cfg) as store:
        updated = store.get_subscriber("pref@example.org")
    assert updated is not None
    assert updated.cadence == "daily" and updated.tags == ("web",)


def test_resubscribing_after_unsubscribe_needs_confirmation(make_site, smtp) -> None:
    cfg = _site(make_site, smtp)
    with open_store(cfg) as store:
        sub, _ = store.add_subscriber("back@example.org", status="unsubscribed")
    old_confirm = link(cfg, "confirm", sub.id, sub.email)
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get(_local(old_confirm, server.url)).status_code == 400
        assert _status(cfg, "back@example.org") == "unsubscribed"
        assert _subscribe(client, "back@example.org").status_code == 200
        assert _status(cfg, "back@example.org") == "pending"
        (message,) = smtp.wait(1)
        assert _confirm(client, _local(link_in(message, "confirm"), server.url)
                        ).status_code == 200
    assert _status(cfg, "back@example.org") == "active"


def test_one_address_gets_at_most_three_mails_a_day(make_site, smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp, "[web]\nsubscribe_rate = 100\n")
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        answers = [_subscribe(client, "victim@example.org") for _ in range(5)]
        assert {a.status_code for a in answers} == {200}
        assert len({a.text for a in answers}) == 1  # the same page every time
    time.sleep(0.3)
    assert len(smtp.messages) == 3


def _signed_days_ago(cfg: Config, purpose: str, payload: object, days: float) -> str:
    """A link as it was mailed `days` ago (itsdangerous signs with the given timestamp)."""
    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    from feedpub.mail.tokens import secret_key

    class Earlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - days * 86400)

    token = URLSafeTimedSerializer(secret_key(cfg), salt=f"feedpub-{purpose}",
                                   signer=Earlier).dumps(payload)
    return f"{cfg.site.base_url}{purpose}?token={token}"


def test_unsubscribe_and_preferences_links_never_expire(make_site, smtp: SmtpCatcher) -> None:
    cfg = _site(make_site, smtp)
    assert cfg.web.confirm_max_age == "48h"
    with open_store(cfg) as store:
        sub, _ = store.add_subscriber("old@example.org", status="active")
        late, _ = store.add_subscriber("late@example.org", status="pending")
    unsubscribe = _signed_days_ago(cfg, "unsubscribe", [sub.id, address_digest(sub.email)], 400)
    preferences = _signed_days_ago(cfg, "preferences", [sub.id, address_digest(sub.email)], 400)
    confirm = _signed_days_ago(cfg, "confirm", [late.id, address_digest(late.email)], 31)
    with serve(cfg) as (server, _), httpx.Client(base_url=server.url, timeout=10) as client:
        assert client.get(_local(preferences, server.url)).status_code == 200
        assert client.get(_local(unsubscribe, server.url)).status_code == 200
        with httpx.Client(timeout=10) as mail_client:  # RFC 8058 one-click, a year later
            done = mail_client.post(_local(unsubscribe, server.url),
                                    data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
        expired = client.get(_local(confirm, server.url))
        assert expired.status_code == 400 and "expired" in expired.text
    assert _status(cfg, "old@example.org") == "unsubscribed"
    assert _status(cfg, "late@example.org") == "pending"


def test_an_old_link_never_acts_on_a_reused_subscriber_id(make_site, smtp: SmtpCatcher) -> None:
    from click.testing import CliRunner

    from feedpub.cli import cli

    cfg = _site(make_site, smtp)
    with open_store(cfg) as store:
        store.add_subscriber("first@example.org", status="active")
        gone, _ = store.add_subscriber("gone@example.org", status="active")
    old_unsubscribe = link(cfg, "unsubscribe", gone.id, gone.email)  # in an old digest
    old_preferences = link(cfg, "preferences", gone.id, gone.email)
    result = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), "subscribers",
                                      "remove", "--purge", "gone@example.org"])
    assert result.exit_code == 0, result.output
    with open_store(cfg) as store:
        new, _ = store.add_subscriber("new@example.org", status="active")
    # SQLite hands the highest id out again; PostgreSQL's sequences never do, and the old
    # links must fail there too.
    assert new.id == gone.id or cfg.database_url.startswith("postgresql")
    with serve(cfg) as (server, _), httpx.Client(timeout=10) as scanner:
        response = scanner.post(_local(old_unsubscribe, server.url),
                                data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 400
        assert "no longer exists" in response.text and "Nothing was changed" in response.text
        assert scanner.get(_local(old_unsubscribe, server.url)).status_code == 400
        assert scanner.get(_local(old_preferences, server.url)).status_code == 400
        current = link(cfg, "unsubscribe", new.id, new.email)  # the new subscriber's own link
        assert scanner.get(_local(current, server.url)).status_code == 200
    assert _status(cfg, "new@example.org") == "active"


def test_links_signed_before_addresses_were_bound(make_site, smtp: SmtpCatcher) -> None:
    """Bare-id links already in inboxes keep working, but not for a later subscriber."""
    cfg = _site(make_site, smtp)
    with open_store(cfg) as store:
        old, _ = store.add_subscriber("old@example.org", status="active",
                                      now=datetime.now(UTC) - timedelta(days=30))
        young, _ = store.add_subscriber("young@example.org", status="active")
    mailed = _signed_days_ago(cfg, "unsubscribe", old.id, 10)  # after old signed up
    before = _signed_days_ago(cfg, "unsubscribe", young.id, 10)  # before young existed
    with serve(cfg) as (server, _), httpx.Client(timeout=10) as mail_client:
        refused = mail_client.post(_local(before, server.url),
                                   data={"List-Unsubscribe": "One-Click"})
        assert refused.status_code == 400 and "not valid" in refused.text
        done = mail_client.post(_local(mailed, server.url),
                                data={"List-Unsubscribe": "One-Click"})
        assert done.status_code == 200
    assert _status(cfg, "young@example.org") == "active"
    assert _status(cfg, "old@example.org") == "unsubscribed"
