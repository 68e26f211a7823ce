"""`feedpub db`: schema versions, explicit upgrades, and copying a store between databases.

Real databases: SQLite files and fresh PostgreSQL databases on the machine's server.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from feedpub.cli import cli
from feedpub.config import Config
from feedpub.jobs.mailing import send_digest
from feedpub.store import open_store, schema
from feedpub.store.dialect import create_engine

ARTICLES = {"2026-03-01-a.txt": "date 2026-03-01 First post\n\nHello.\n",
            "2026-03-02-b.txt": "date 2026-03-02 Second post\n\nAgain.\n"}
NOW = datetime(2026, 3, 2, 20, tzinfo=UTC)


def _cli(cfg: Config, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(_config_file(cfg)), *args])


def _config_file(cfg: Config) -> Path:
    """config.toml, or other.toml for a config made by `_with_store`."""
    other = cfg.root / "other.toml"
    return other if other.exists() and cfg.store.url != "sqlite:///data/feedpub.db" else (
        cfg.root / "config.toml")


def _populated(make_site) -> Config:  # type: ignore[no-untyped-def]
    cfg = make_site(ARTICLES)
    with open_store(cfg) as store:
        for n in range(25):
            store.add_subscriber(f"reader{n}@example.org", f"Reader {n}", cadence="daily",
                                 tags=["city"] if n % 2 else [])
        store.add_subscriber("pending@example.org", status="pending")
        store.set_meta("daemon.last_build", NOW.isoformat())
    report = send_digest(cfg, "daily", now=NOW)
    assert report.sent == 13  # the twelve who follow only "city" get nothing this time
    return cfg


def _counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                                or 0)
                    for t in schema.metadata.sorted_tables}
    finally:
        engine.dispose()


def _with_store(cfg: Config, url: str) -> Config:
    text = (cfg.root / "config.toml").read_text(encoding="utf-8")
    (cfg.root / "other.toml").write_text(text + f'\n[store]\nurl = "{url}"\n', encoding="utf-8")
    from feedpub.config import load_config
    return load_config(cfg.root / "other.toml")


def test_copy_to_postgresql_and_back_keeps_every_row(make_site, postgres_url: str,
                                                     tmp_path: Path) -> None:
    cfg = _populated(make_site)
    before = _counts(cfg.database_url)
    assert before["subscribers"] == 26 and before["outbox"] == 13 and before["issues"] == 1

    result = _cli(cfg, "db", "copy", "--to", postgres_url)
    assert result.exit_code == 0, result.output
    assert "subscribers: 26 row(s)" in result.output and "row counts match" in result.output
    assert _counts(postgres_url) == before

    on_pg = _with_store(cfg, postgres_url)
    with open_store(on_pg) as store:
        ann = store.get_subscriber("reader3@example.org")
        assert ann is not None and ann.name == "Reader 3" and ann.tags == ("city",)
        # The id sequence was moved past the copied ids: a new subscriber gets a fresh one.
        new, created = store.add_subscriber("new@example.org")
        assert created and new.id > 26
    # The copied issue is known as sent: the same period sends nothing twice.
    again = send_digest(on_pg, "daily", now=NOW)
    assert again.sent == 0

    back = f"sqlite:///{tmp_path / 'back.db'}"
    result = _cli(on_pg, "db", "copy", "--to", back)
    assert result.exit_code == 0, result.output
    assert _counts(back) == _counts(postgres_url)
    assert _counts(back)["subscribers"] == 27


def test_copy_refuses_a_destination_that_holds_data(make_site, postgres_url: str) -> None:
    cfg = _populated(make_site)
    assert _cli(cfg, "db", "copy", "--to", postgres_url).exit_code == 0
    result = _cli(cfg, "db", "copy", "--to", postgres_url)
    assert result.exit_code == 1
    assert "not empty" in result.output or "already holds" in result.output
    assert _counts(postgres_url) == _counts(cfg.database_url)  # nothing doubled


def _old_database(url: str) -> None:
    """A store as the first release left it: schema version 1, one subscriber."""
    engine = create_engine(url)
    with engine.begin() as conn:
        schema.schema_version.create(conn)
        schema.MIGRATIONS[0](conn)
        conn.execute(schema.schema_version.insert().values(version=1, applied=NOW))
        conn.execute(schema.subscribers.insert().values(
            email="old@example.com", status="active", created=NOW, tags=""))
    engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_run_refuses_an_older_schema_until_db_upgrade(make_site, postgres_url: str,
                                                      kind: str) -> None:
    cfg = make_site(ARTICLES)
    if kind == "postgresql":
        cfg = _with_store(cfg, postgres_url)
    _old_database(cfg.database_url)
    config = str(_config_file(cfg))

    status = _cli(cfg, "db", "status")
    assert status.exit_code == 0 and "schema version 1" in status.output
    assert "needs `feedpub db upgrade`" in status.output

    run = subprocess.run([sys.executable, "-m", "feedpub", "--config", config, "run",
                          "--port", "0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "feedpub db upgrade" in run.stderr and "schema version 1" in run.stderr

    upgrade = _cli(cfg, "db", "upgrade")
    assert upgrade.exit_code == 0, upgrade.output
    assert f"from schema version 1 to {schema.SCHEMA_VERSION}" in upgrade.output
    assert "already at" in _cli(cfg, "db", "upgrade").output
    with open_store(cfg) as store:
        assert store.get_subscriber("old@example.com") is not None


def test_upgrades_from_several_machines_at_once_run_each_step_once(make_site,
                                                                   postgres_url: str) -> None:
    cfg = _with_store(make_site(ARTICLES), postgres_url)
    _old_database(postgres_url)
    args = [sys.executable, "-m", "feedpub", "--config", str(cfg.root / "other.toml"),
            "db", "upgrade"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), outputs
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        versions = conn.execute(sa.select(schema.schema_version.c.version)
                                .order_by(schema.schema_version.c.version)).scalars().all()
    engine.dispose()
    assert versions == list(range(1, schema.SCHEMA_VERSION + 1))


def test_a_postgresql_url_without_the_driver_name_works(make_site, postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    cfg = _with_store(make_site(), plain)
    with open_store(cfg) as store:
        store.add_subscriber("a@example.org")
        assert store.engine.dialect.driver == "psycopg"


def test_a_postgresql_server_that_does_not_answer_is_a_clear_error(make_site) -> None:
    cfg = _with_store(make_site(), "postgresql+psycopg://postgres@127.0.0.1:1/feedpub")
    result = _cli(cfg, "subscribers", "list")
    assert result.exit_code == 1
    assert "cannot open or migrate the database" in result.output
    assert "that the server is up" in result.output
