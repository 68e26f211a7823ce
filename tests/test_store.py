"""The subscriber store on a real SQLite file: records, migrations, concurrency."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from feedpub.errors import StoreError, SubscriberError
from feedpub.store import normalize_email, open_store, schema
from feedpub.store.dialect import create_engine


def test_normalize_email_lowercases_domain_keeps_local_part() -> None:
    assert normalize_email("  Jane.Doe@ExAmple.COM ") == "Jane.Doe@example.com"
    for bad in ("", "plainaddress", "a@", "@example.com", "a b@example.com", "a@b@c.com"):
        with pytest.raises(SubscriberError):
            normalize_email(bad)


def test_add_collapses_duplicates_and_keeps_the_first_record(site) -> None:
    with open_store(site) as store:
        first, created = store.add_subscriber("Ann@Example.com", "Ann", tags=["Py", " py ", "Go"])
        again, created_again = store.add_subscriber("Ann@EXAMPLE.COM", "Other name",
                                                    status="pending")
        assert created and not created_again
        assert again == first
        assert first.email == "Ann@example.com"
        assert first.tags == ("go", "py")
        assert first.status == "active" and first.confirmed is not None
        assert first.created.tzinfo is not None
        assert [s.email for s in store.iter_subscribers()] == ["Ann@example.com"]
        assert store.get_subscriber("ann@example.com") is None  # the local part is kept
        assert store.get_subscriber("Ann@EXAMPLE.com") == first


def test_names_never_carry_line_breaks(site) -> None:
    with open_store(site) as store:
        sub, _ = store.add_subscriber("a@example.com", "Eve\r\nBcc: x@example.com")
    assert sub.name == "Eve Bcc: x@example.com"


def test_status_preferences_and_meta(site) -> None:
    with open_store(site) as store:
        sub, _ = store.add_subscriber("p@example.com", status="pending")
        assert sub.confirmed is None
        active = store.set_status(sub.id, "active")
        assert active.status == "active" and active.confirmed is not None
        prefs = store.update_preferences(sub.id, cadence="daily", tags=["News", "news"])
        assert (prefs.cadence, prefs.tags) == ("daily", ("news",))
        assert store.get_subscriber_by_id(sub.id) == prefs
        with pytest.raises(SubscriberError):
            store.set_status(sub.id, "gone")
        with pytest.raises(SubscriberError):
            store.update_preferences(sub.id, cadence="hourly", tags=[])
        assert store.get_meta("k") is None
        store.set_meta("k", "1")
        store.set_meta("k", "2")
        assert store.get_meta("k") == "2"


def test_iter_subscribers_streams_in_id_order_across_batches(site) -> None:
    with open_store(site) as store, store.writer.begin() as conn:
        now = datetime.now(UTC)
        conn.execute(schema.subscribers.insert(), [
            {"email": f"u{i}@example.com", "status": "active" if i % 3 else "pending",
             "created": now, "tags": "", "bounces": 0} for i in range(2500)])
    with open_store(site) as store:
        ids = [s.id for s in store.iter_subscribers()]
        assert ids == sorted(ids) and len(ids) == 2500
        pending = list(store.iter_subscribers("pending"))
        assert len(pending) == 834 and {s.status for s in pending} == {"pending"}
        assert store.count_subscribers()["active"] == 1666


def test_database_is_created_in_wal_mode_at_the_current_version(site) -> None:
    with open_store(site) as store, store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert schema.current_version(conn) == schema.SCHEMA_VERSION == len(schema.MIGRATIONS)
    assert (site.data_dir / "feedpub.db").exists()


def test_old_database_is_migrated_and_keeps_its_data(site) -> None:
    engine = create_engine(site.database_url)
    with engine.begin() as conn:
        schema.schema_version.create(conn)
        schema.MIGRATIONS[0](conn)
        conn.execute(schema.schema_version.insert().values(version=1, applied=datetime.now(UTC)))
        conn.execute(schema.subscribers.insert().values(
            email="old@example.com", status="active", created=datetime.now(UTC), tags=""))
    engine.dispose()
    with open_store(site) as store:
        assert store.get_subscriber("old@example.com") is not None
        assert sa.inspect(store.engine).has_table("outbox")
        with store.engine.connect() as conn:
            versions = conn.execute(sa.select(schema.schema_version.c.version)).scalars().all()
        assert versions == list(range(1, schema.SCHEMA_VERSION + 1))


def test_database_from_a_newer_version_is_refused(site) -> None:
    with open_store(site) as store, store.writer.begin() as conn:
        conn.execute(schema.schema_version.insert().values(version=99,
                                                           applied=datetime.now(UTC)))
    with pytest.raises(StoreError, match="newer"):
        open_store(site)


def test_bad_store_url_names_the_key(make_site) -> None:
    cfg = make_site(extra='[store]\nurl = "nosuchdb://x"\n')
    with pytest.raises(StoreError, match=r"\[store\] url"):
        open_store(cfg)


def test_threads_and_another_process_write_the_same_file(site) -> None:
    open_store(site).close()
    script = (
        "import sys; from feedpub.config import load_config; from feedpub.store import open_store\n"
        "s = open_store(load_config(__import__('pathlib').Path(sys.argv[1])))\n"
        "[s.add_subscriber(f'proc{i}@example.com') for i in range(150)]\n"
        "[s.set_meta('last', str(i)) for i in range(50)]\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(site.root / "config.toml")])
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with open_store(site) as store:
                for i in range(60):
                    sub, _ = store.add_subscriber(f"t{n}-{i}@example.com")
                    store.set_status(sub.id, "active")
                    store.add_subscriber("shared@example.com")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert proc.wait(timeout=60) == 0
    assert not errors
    with open_store(site) as store:
        emails = [s.email for s in store.iter_subscribers()]
    assert len(emails) == len(set(emails)) == 4 * 60 + 150 + 1


@pytest.mark.parametrize("text, first_line", [
    ("\ufeffemail,name\nann@example.com,Ann\nnot-an-address,Bob\n", 2),  # BOM
    ("# exported 2026-03-01\nemail,name\nann@example.com,Ann\nnot-an-address,Bob\n", 3),
    ("\n\nemail,name\nann@example.com,Ann\nnot-an-address,Bob\n", 4),
    ("Email Address,First Name,Last Name,Tags\nann@example.com,Ann,Lee,a;b\n"
     "not-an-address,Bob,,\n", 2),
])
def test_csv_header_after_bom_comments_blank_lines_and_mailchimp_names(
        text: str, first_line: int) -> None:
    from feedpub.store.csvio import parse_csv

    rows, errors = parse_csv(text, "people.csv")
    assert [(r.email, r.line) for r in rows] == [("ann@example.com", first_line)]
    assert rows[0].name in ("Ann", "Ann Lee")
    assert len(errors) == 1 and errors[0].startswith(f"people.csv:{first_line + 1}: ")
    assert "not-an-address" in errors[0]


def test_csv_row_holding_an_address_is_never_a_header() -> None:
    from feedpub.store.csvio import parse_csv

    rows, errors = parse_csv("# list\nemail@example.com,name\nbob@example.com,Bob\n", "x.csv")
    assert [(r.email, r.name, r.line) for r in rows] == [("email@example.com", "name", 2),
                                                         ("bob@example.com", "Bob", 3)]
    assert errors == []
