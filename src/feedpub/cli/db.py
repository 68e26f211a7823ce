"""Database commands: `feedpub db status`, `db upgrade` and `db copy`."""

from __future__ import annotations

import click

from ..store import open_store, schema_versions
from ..store.copy import copy_database
from ..store.dialect import safe_url
from .context import Context, pass_ctx


@click.group("db")
def db() -> None:
    """Inspect, upgrade and move the database named by [store] url.

    \b
    Examples:
      feedpub db status
      feedpub db upgrade
    """


@db.command("status")
@pass_ctx
def status(ctx: Context) -> None:
    """Show the database's schema version and the one this feedpub needs.

    \b
    Example:
      feedpub db status
    """
    have, need = schema_versions(ctx.config)
    where = safe_url(ctx.config.database_url)
    state = ("empty (created on first use)" if have == 0 else "up to date" if have == need
             else "needs `feedpub db upgrade`" if have < need else "newer than this feedpub")
    click.echo(f"{where}: schema version {have}, this feedpub needs {need}: {state}")


@db.command("upgrade")
@pass_ctx
def upgrade(ctx: Context) -> None:
    """Apply the database migrations this feedpub release brings (back the database up first).

    `feedpub run` refuses to start on an older schema until this has run. Safe to run again,
    and from several machines at once: the steps are serialized and each runs once.

    \b
    Example:
      feedpub db upgrade
    """
    before, _ = schema_versions(ctx.config)
    with open_store(ctx.config, upgrade=True):
        pass
    after, _ = schema_versions(ctx.config)
    where = safe_url(ctx.config.database_url)
    if before == after:
        click.echo(f"{where}: already at schema version {after}")
    else:
        click.echo(f"{where}: upgraded from schema version {before} to {after}")


@db.command("copy")
@click.option("--to", "destination", required=True, metavar="URL",
              help="Database URL to copy into; it must be empty.")
@pass_ctx
def copy(ctx: Context, destination: str) -> None:
    """Copy every row of this site's database into another, empty one (SQLite to PostgreSQL,
    or back), and compare the row counts. Stop `feedpub run` first; then point [store] url
    at the new database.

    \b
    Example:
      feedpub db copy --to postgresql+psycopg://feedpub@db.example.org/feedpub
    """
    report = copy_database(ctx.config.database_url, destination)
    for table, rows in report.rows.items():
        click.echo(f"{table}: {rows} row(s)")
    click.echo(f"copied {report.source} to {report.destination}; row counts match")


COMMANDS: list[click.Command] = [db]
