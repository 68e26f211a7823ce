"""Addresses are one subscriber whatever their case: the merge of existing duplicates (schema
step 3) on a real SQLite file, and import, export, `--subscriber`-style lookups and removal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from feedpub.config import Config
from feedpub.store import open_store, schema
from feedpub.store.csvio import export_csv, import_csv
from feedpub.store.dialect import create_engine

T0 = datetime(2025, 1, 1, tzinfo=UTC)

# The subscribers table as steps 1 and 2 made it, before addresses ignored case.
_OLD = sa.MetaData()
_OLD_SUBSCRIBERS = sa.Table(
    "subscribers", _OLD,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created", schema.UTCDateTime, nullable=False),
    sa.Column("confirmed", schema.UTCDateTime),
    sa.Column("cadence", sa.String(16)),
    sa.Column("tags", sa.Text, nullable=False, server_default=""),
    sa.Column("bounces", sa.Integer, nullable=False, server_default="0"),
)


def _old_store(cfg: Config) -> None:
    """A version-2 database with three spellings of one mailbox and their outbox rows."""
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(cfg.database_url)
    with engine.begin() as conn:
        schema.schema_version.create(conn)
        schema.meta.create(conn)
        _OLD_SUBSCRIBERS.create(conn)
        for name in ("issues", "variants", "outbox", "sent_articles"):
            schema.metadata.tables[name].create(conn)
        for version in (1, 2):
            conn.execute(schema.schema_version.insert().values(version=version, applied=T0))
        rows = [  # id, email, status, created, confirmed, cadence, tags, name
            (1, "Alice@example.org", "active", T0, T0 + timedelta(hours=1), "weekly", "go",
             "Alice"),
            (2, "bob@example.org", "active", T0, T0, None, "", None),
            (3, "alice@example.org", "active", T0 + timedelta(days=1), T0, "daily", "py",
             None),
            (4, "ALICE@example.org", "pending", T0 + timedelta(days=2), None, "daily", "rust",
             "A."),
        ]
        for id_, email, status, created, confirmed, cadence, tags, name in rows:
            conn.execute(_OLD_SUBSCRIBERS.insert().values(
                id=id_, email=email, status=status, created=created, confirmed=confirmed,
                cadence=cadence, tags=tags, name=name, bounces=id_ == 3))
        for issue in (1, 2):
            conn.execute(schema.issues.insert().values(
                id=issue, cadence="weekly", created=T0, since=T0, status="pending",
                article_ids="[]", total=3))
            conn.execute(schema.variants.insert().values(
                id=issue, issue_id=issue, tags="", subject="s", html="h", text="t",
                article_ids="[]"))
        outbox = [  # issue 1: Alice sent as id 3 only; issue 2: pending for 1, sent for 3
            (1, 1, 3, "sent"), (2, 1, 2, "sent"), (3, 2, 1, "pending"), (4, 2, 3, "sent"),
            (5, 1, 4, "pending")]
        for id_, issue, subscriber, status in outbox:
            conn.execute(schema.outbox.insert().values(
                id=id_, issue_id=issue, subscriber_id=subscriber, variant_id=issue,
                email="x@example.org", status=status))
    engine.dispose()


def test_the_migration_merges_addresses_that_differ_only_in_case(site: Config) -> None:
    _old_store(site)
    with open_store(site, upgrade=True) as store:  # what `feedpub db upgrade` does
        subscribers = list(store.iter_subscribers())
        assert [(s.id, s.email) for s in subscribers] == [(1, "Alice@example.org"),
                                                          (2, "bob@example.org")]
        alice = subscribers[0]
        assert alice.status == "active"  # the newest row is pending; an active one wins
        assert alice.confirmed == T0  # the earliest confirmation
        assert alice.tags == ("go", "py", "rust")  # the union
        assert alice.cadence == "daily"  # the newest row's preferences
        assert alice.name == "Alice"
        for spelling in ("alice@example.org", "ALICE@EXAMPLE.ORG", "Alice@example.org"):
            assert store.get_subscriber(spelling) == alice
        with store.engine.connect() as conn:
            box = schema.outbox.c
            rows = conn.execute(sa.select(box.issue_id, box.subscriber_id, box.status)
                                .order_by(box.issue_id, box.subscriber_id)).all()
            version = schema.current_version(conn)
            bounces = conn.execute(sa.select(schema.subscribers.c.bounces)
                                   .where(schema.subscribers.c.id == 1)).scalar()
        # One row per issue and mailbox; a sent row wins, so nobody gets an issue twice.
        assert [tuple(r) for r in rows] == [(1, 1, "sent"), (1, 2, "sent"), (2, 1, "sent")]
        assert version == schema.SCHEMA_VERSION and bounces == 1
        created, again = store.add_subscriber("aLiCe@example.org")
        assert again is False and created.id == 1


def test_import_export_and_removal_ignore_case(site: Config, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("email,name\nCarol@example.org,Carol\ncarol@example.org,Again\n"
                      "DAVE@example.org,Dave\n")
    with open_store(site) as store:
        store.add_subscriber("dave@example.org", "Dave first")
        report = import_csv(store, source)
        assert (report.added, report.existing) == (1, 1)
        again = import_csv(store, source)
        assert (again.added, again.existing) == (0, 2)
        out = tmp_path / "out.csv"
        with out.open("w") as handle:
            assert export_csv(store, handle) == 2
        emails = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
        assert emails == ["dave@example.org", "Carol@example.org"]  # as first written
        carol = store.get_subscriber("CAROL@example.org")
        assert carol is not None and carol.name == "Carol"
        assert store.delete_subscriber(carol.id)
        assert store.get_subscriber("carol@example.org") is None
