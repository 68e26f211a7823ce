"""DKIM signatures and VERP return paths on real sent messages (aiosmtpd), checked with dkimpy's
verifier; its DNS lookups are answered from the records `feedpub dkim keygen` prints."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from feedpub.cli import cli
from feedpub.config import Config
from feedpub.delivery.dkim import SIGNED_HEADERS, configured_keys, generate_key, load_key
from feedpub.errors import ConfigError
from feedpub.jobs.mailing import send_digest
from feedpub.mail import verp
from feedpub.mail.tokens import secret_key
from feedpub.store import open_store
from mail_helpers import NOW, add_subscribers, article
from smtp_server import SmtpServer, smtp_server

__all__ = ["smtp_server"]


def dns_from(records: dict[str, str]):  # noqa: ANN201 - dkimpy's dnsfunc signature
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return records[name.decode().rstrip(".")].encode() if name.decode().rstrip(".") in \
            records else None
    return lookup


def verifies(data: bytes, index: int, dnsfunc) -> bool:  # noqa: ANN001
    try:
        return bool(dkim.DKIM(data).verify(index, dnsfunc=dnsfunc))
    except dkim.ValidationError:
        return False


def keygen(root: Path, selector: str, algorithm: str) -> tuple[Path, str, str]:
    """Run `feedpub dkim keygen`; returns the key file, the DNS name and the TXT record."""
    out = root / f"{selector}.key"
    result = CliRunner().invoke(cli, ["--config", str(root / "config.toml"), "dkim", "keygen",
                                      "--selector", selector, "--algorithm", algorithm,
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    name, record = "", ""
    for line in result.output.splitlines():
        if "._domainkey." in line and "IN TXT" in line:
            name = line.split()[0].rstrip(".")
            record = "".join(part for part in line.split('"')[1::2])
    assert name and record, result.output
    return out, name, record


def signed_site(make_site, server: SmtpServer, tmp_path: Path, *, dual: bool = True,
                return_path: str = "") -> tuple[Config, dict[str, str]]:
    cfg = make_site()  # writes config.toml so keygen can read it
    records = {}
    rsa_key, name, record = keygen(cfg.root, "rsa1", "rsa")
    records[name] = record
    extra = f'domain = "news.example.org"\nselector = "rsa1"\nkey_file = "{rsa_key.name}"\n'
    if dual:
        ed_key, name, record = keygen(cfg.root, "ed1", "ed25519")
        records[name] = record
        extra += f'dual_selector = "ed1"\ndual_key_file = "{ed_key.name}"\n'
    text = (cfg.root / "config.toml").read_text()
    text += (f'\n[delivery]\nbackend = "smtp"\nretry_base = 0.05\nreturn_path = "{return_path}"'
             f'\n\n[delivery.smtp]\nhost = "127.0.0.1"\nport = {server.port}\n'
             f'security = "none"\ntimeout = 10.0\n\n[delivery.dkim]\n{extra}')
    return make_site(config_text=text), records


def test_keygen_writes_a_private_key_file_and_the_record(make_site, tmp_path: Path) -> None:
    cfg = make_site()
    path, name, record = keygen(cfg.root, "sel2026", "rsa")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert name == "sel2026._domainkey.news.example.org"
    assert record.startswith("v=DKIM1; k=rsa; p=")
    assert load_key(path, "news.example.org", "sel2026").key.key_size == 2048  # type: ignore[union-attr]
    again = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), "dkim",
                                     "keygen", "--selector", "sel2026", "--out", str(path)])
    assert again.exit_code != 0 and "already exists" in again.output


def test_sent_messages_verify_with_both_keys_and_any_header_change_breaks_them(
        make_site, smtp_server: SmtpServer, tmp_path: Path) -> None:
    cfg, records = signed_site(make_site, smtp_server, tmp_path)
    with open_store(cfg) as store:
        add_subscribers(store, 3)
    report = send_digest(cfg, "weekly", now=NOW, articles=[article(1), article(2)])
    assert report.sent == 3
    dnsfunc = dns_from(records)
    bodies = set()
    for item in smtp_server.handler.received:
        data = item.data
        assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
        assert b"DKIM-Signature: v=1; a=ed25519-sha256;" in data
        checker = dkim.DKIM(data)
        assert checker.verify(0, dnsfunc=dnsfunc), "RSA signature does not verify"
        assert dkim.DKIM(data).verify(1, dnsfunc=dnsfunc), "Ed25519 signature does not verify"
        signed = {h.strip().lower() for h in checker.signature_fields[b"h"].split(b":")}
        assert set(SIGNED_HEADERS) <= signed
        bodies.add(data.split(b"\r\n\r\n", 1)[1])
        head = data.split(b"\r\n\r\n", 1)[0]
        for header in (b"From", b"To", b"Subject", b"Date", b"Message-ID", b"MIME-Version",
                       b"Content-Type", b"List-Id", b"List-Unsubscribe",
                       b"List-Unsubscribe-Post"):
            marker = b"\r\n" + header + b": "
            assert marker in head, header
            changed = data.replace(marker, marker + b"X", 1)
            assert not verifies(changed, 0, dnsfunc), header
            assert not verifies(changed, 1, dnsfunc), header
        added = data.replace(b"\r\n\r\n", b"\r\nList-Unsubscribe-Post: x\r\n\r\n", 1)
        assert not verifies(added, 0, dnsfunc)
        body_changed = data.replace(b"Hello", b"Hallo", 1)
        assert body_changed != data and not verifies(body_changed, 0, dnsfunc)
        assert not verifies(body_changed, 1, dnsfunc)
    assert len(bodies) == 3  # signed per recipient: the links differ


def test_verp_return_path_names_subscriber_and_issue(make_site, smtp_server: SmtpServer,
                                                      tmp_path: Path) -> None:
    cfg, _ = signed_site(make_site, smtp_server, tmp_path, dual=False,
                         return_path="bounces@news.example.org")
    with open_store(cfg) as store:
        add_subscribers(store, 2)
        subs = list(store.iter_subscribers())
    report = send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    claims = {}
    for item in smtp_server.handler.received:
        assert item.mail_from.startswith("bounces+") and item.mail_from.endswith(
            "@news.example.org")
        claim = verp.claim_from_address(cfg, item.mail_from)
        assert claim is not None and claim.issue_id == report.issue_id
        claims[item.rcpt_tos[0]] = claim.subscriber_id
        forged = item.mail_from.replace(f"-{report.issue_id}-", f"-{report.issue_id + 1}-")
        assert verp.claim_from_address(cfg, forged) is None
        assert verp.claim_from_address(cfg, item.mail_from.upper()) == claim  # case folded
    assert claims == {s.email: s.id for s in subs}
    key = secret_key(cfg)
    assert verp.read_token(key, "1-1-0000000000000000") is None


def test_without_return_path_the_envelope_sender_is_the_from_address(
        make_site, smtp_server: SmtpServer) -> None:
    cfg = make_site(extra=smtp_server.config())
    with open_store(cfg) as store:
        add_subscribers(store, 1)
    send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    [item] = smtp_server.handler.received
    assert item.mail_from == "letters@news.example.org"
    assert b"DKIM-Signature" not in item.data


def test_one_click_header_only_with_an_https_unsubscribe_link(make_site,
                                                               smtp_server: SmtpServer) -> None:
    cfg = make_site(config_text=(Path(make_site().root / "config.toml").read_text()
                                 .replace("https://news.example.org/", "http://news.example.org/")
                                 + smtp_server.config()))
    with open_store(cfg) as store:
        add_subscribers(store, 1)
    send_digest(cfg, "weekly", now=NOW, articles=[article(1)])
    [item] = smtp_server.handler.received
    msg = item.message()
    assert msg["List-Unsubscribe"].startswith("<http://news.example.org/unsubscribe?token=")
    assert msg["List-Unsubscribe-Post"] is None


def test_bad_keys_are_named_with_the_fix(make_site, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    small = tmp_path / "small.key"
    small.write_bytes(rsa.generate_private_key(public_exponent=65537, key_size=1024)
                      .private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    with pytest.raises(ConfigError, match=r"small\.key: RSA key of 1024 bits.*at least 2048"):
        load_key(small, "news.example.org", "s")
    (tmp_path / "junk.key").write_text("not a key")
    with pytest.raises(ConfigError, match=r"junk\.key: not an unencrypted PEM private key"):
        load_key(tmp_path / "junk.key", "news.example.org", "s")
    cfg = make_site(config_text=(make_site().root / "config.toml").read_text()
                    + '\n[delivery.dkim]\nselector = "s"\nkey_file = "missing.key"\n')
    with pytest.raises(ConfigError, match=r"missing\.key: cannot read the DKIM key"):
        configured_keys(cfg)
    generate_key(tmp_path / "ok.key", "news.example.org", "s", "ed25519")


def spamassassin_score(data: bytes, home: Path) -> tuple[float, list[str]]:
    """SpamAssassin's local tests only (-L: no network), with throwaway preferences."""
    import re
    import shutil
    import subprocess

    if shutil.which("spamassassin") is None:
        message = ("spamassassin is not installed: apt-get install spamassassin (.ci/run "
                   "installs it) to compare signed and unsigned digests")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(["spamassassin", "-L", "-t", "-p", str(home / "prefs")], input=data,
                          capture_output=True, check=True, timeout=120,
                          env={**os.environ, "HOME": str(home)})
    found = re.search(rb"X-Spam-Status: \w+, score=(-?[\d.]+)\s.*?tests=(.*?)\s+autolearn",
                      done.stdout, re.S)
    assert found, done.stdout[:2000]
    tests = [t for t in re.split(r"[,\s]+", found.group(2).decode()) if t]
    return float(found.group(1)), tests


def test_spamassassin_scores_a_signed_digest_no_worse(make_site, smtp_server: SmtpServer,
                                                       tmp_path: Path) -> None:
    cfg, _ = signed_site(make_site, smtp_server, tmp_path)
    with open_store(cfg) as store:
        add_subscribers(store, 1)
    send_digest(cfg, "weekly", now=NOW, articles=[article(1), article(2)])
    [item] = smtp_server.handler.received
    signed = item.data
    assert signed.startswith(b"DKIM-Signature:")
    unsigned = signed[signed.index(b"\r\nFrom: ") + 2:]  # the same copy without signatures
    assert unsigned.startswith(b"From: ") and b"DKIM-Signature" not in unsigned
    home = tmp_path / "sa"
    home.mkdir()
    signed_score, signed_tests = spamassassin_score(signed, home)
    unsigned_score, _ = spamassassin_score(unsigned, home)
    assert signed_score <= unsigned_score, (signed_score, unsigned_score, signed_tests)
    assert not [t for t in signed_tests if "DKIM_INVALID" in t], signed_tests


@given(st.lists(st.text(alphabet=" \tab=", max_size=12), max_size=8), st.booleans())
@settings(max_examples=300, deadline=None)
def test_relaxed_body_agrees_with_dkimpy(lines: list[str], final_crlf: bool) -> None:
    from dkim.canonicalization import Relaxed

    from feedpub.delivery.dkim import relaxed_body

    body = "\r\n".join(lines).encode() + (b"\r\n" if final_crlf else b"")
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


def test_a_test_copy_is_signed_like_the_real_ones(make_site, smtp_server: SmtpServer,
                                                   tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from feedpub.jobs.mailing import send_test_message

    cfg, records = signed_site(make_site, smtp_server, tmp_path, dual=False)
    day = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    (cfg.articles_dir / "fresh.md").write_text(f"---\ntitle: Fresh\ndate: {day}\n---\nNew.\n")
    assert send_test_message(cfg, "weekly", "me@example.net") is not None
    [item] = smtp_server.handler.received
    assert item.rcpt_tos == ["me@example.net"]
    assert verifies(item.data, 0, dns_from(records))


@given(st.lists(st.text(alphabet=" \tab=\r\n", max_size=300), min_size=1, max_size=8),
       st.lists(st.integers(0, 7), max_size=12))
@settings(max_examples=300, deadline=None)
def test_fragments_canonicalised_once_equal_the_whole_body(pieces: list[str],
                                                           order: list[int]) -> None:
    """Static fragments are canonicalised once and reused across copies; whatever the
    fragments (spaces and line ends at their edges included), the result is the relaxed
    canonical form of the joined body, as dkimpy computes it."""
    from dkim.canonicalization import Relaxed

    from feedpub.delivery.dkim import BodyCanon

    fragments = [p.replace("\r", "\r\n").replace("\n", "\r\n").replace("\r\r\n", "\r\n")
                 .replace("\r\n\n", "\r\n").encode() for p in pieces]
    canon = BodyCanon(large=4)  # remember nearly every fragment, so reuse is exercised
    for _ in range(2):  # the second pass reads the remembered forms
        body = [fragments[i % len(fragments)] for i in order] or fragments
        assert canon.canonical(body) == Relaxed.canonicalize_body(b"".join(body))


def test_signing_fragments_equals_signing_the_joined_message(make_site) -> None:
    from feedpub.delivery.dkim import Signer
    from feedpub.delivery.sender import recipient_for
    from feedpub.mail.digest import render_digest
    from feedpub.mail.message import MessageTemplate

    cfg = make_site()
    key = generate_key(cfg.root / "k.pem", "example.org", "s1")
    signer = Signer([key])
    template = MessageTemplate(cfg, render_digest(cfg, "weekly", [article(1)], NOW),
                               issue_id=3, date=NOW)
    for n in range(3):  # later copies reuse the canonical static fragments
        head, body = template.render_parts(recipient_for(cfg, n, f"r{n}@example.org",
                                                         "Zoë  \tTabs "))
        whole = head + b"".join(body)
        assert signer.sign_parts(head, body, stamp=1_700_000_000) == signer.sign(
            whole, stamp=1_700_000_000)
