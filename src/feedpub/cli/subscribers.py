"""`feedpub subscribers ...`: add, confirm, set, show, remove, list, import, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import SubscriberError
from ..store import CADENCES, STATUSES, open_store
from ..store.csvio import export_csv, export_rows, import_csv
from .context import Context, pass_ctx


@click.group("subscribers")
def subscribers() -> None:
    """Manage newsletter subscribers.

    \b
    Examples:
      feedpub subscribers add reader@example.org --pending
      feedpub subscribers show reader@example.org
    """


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default=None, help="The subscriber's name, used in the greeting.")
@click.option("--pending", is_flag=True,
              help="Add as pending and mail the confirmation link: they must confirm first.")
@click.option("--no-email", is_flag=True, help="With --pending: send no confirmation now "
              "(`feedpub subscribers confirm EMAIL` sends it later).")
@pass_ctx
def add(ctx: Context, email: str, name: str | None, pending: bool, no_email: bool) -> None:
    """Add a subscriber (active unless --pending). An existing address is left as it is.

    With --pending the confirmation link is mailed at once, unless --no-email.

    \b
    Examples:
      feedpub subscribers add reader@example.org --name "Ada"
      feedpub subscribers add reader@example.org --pending
    """
    from ..jobs.subscriberadmin import send_confirmation

    with open_store(ctx.config) as store:
        sub, created = store.add_subscriber(email, name,
                                            status="pending" if pending else "active")
        click.echo(f"{'added' if created else 'already present'}: {sub.email} ({sub.status})")
        if pending and created:
            if no_email:
                click.echo("no confirmation sent (--no-email); send it with `feedpub "
                           f"subscribers confirm {sub.email}`")
            else:
                send_confirmation(ctx.config, store, sub.email)
                click.echo(f"confirmation link sent to {sub.email}")


@subscribers.command("confirm")
@click.argument("email")
@pass_ctx
def confirm(ctx: Context, email: str) -> None:
    """Mail the confirmation link again to a pending subscriber.

    \b
    Example:
      feedpub subscribers confirm reader@example.org
    """
    from ..jobs.subscriberadmin import send_confirmation

    with open_store(ctx.config) as store:
        sub = send_confirmation(ctx.config, store, email)
    click.echo(f"confirmation link sent to {sub.email}")


@subscribers.command("set")
@click.argument("email")
@click.option("--cadence", type=click.Choice(CADENCES), default=None, help="Which digest.")
@click.option("--tags", default=None, help="Comma-separated tag filter; \"\" for every tag.")
@click.option("--name", default=None, help="The name used in the greeting; \"\" for none.")
@click.option("--status", type=click.Choice(STATUSES), default=None,
              help="E.g. active to reactivate (a bounced address needs --force).")
@click.option("--force", is_flag=True, help="Reactivate an address that bounced or complained.")
@pass_ctx
def set_(ctx: Context, email: str, cadence: str | None, tags: str | None, name: str | None,
         status: str | None, force: bool) -> None:
    """Edit a subscriber: cadence, tags, name, status. Logged with who and when.

    \b
    Examples:
      feedpub subscribers set reader@example.org --cadence daily --tags "city, harbour"
      feedpub subscribers set reader@example.org --status active --force
    """
    from ..jobs.subscriberadmin import Change, edit_subscriber

    tag_list = None if tags is None else [t.strip() for t in tags.split(",") if t.strip()]
    with open_store(ctx.config) as store:
        sub, done = edit_subscriber(store, email, Change(cadence, tag_list, name, status),
                                    force=force)
    click.echo(f"{sub.email}: " + ("; ".join(done) if done else "nothing to change") +
               f" (now {sub.status}, {sub.cadence or 'default cadence'}, "
               f"tags {','.join(sub.tags) or 'all'})")


@subscribers.command("show")
@click.argument("email")
@pass_ctx
def show(ctx: Context, email: str) -> None:
    """Show a subscriber and their history: subscribed, confirmed, issues, bounces, changes.

    \b
    Example:
      feedpub subscribers show reader@example.org
    """
    from ..jobs.subscriberadmin import history

    with open_store(ctx.config) as store:
        sub, lines = history(store, email)
    click.echo(f"{sub.email}  {sub.status}  name {sub.name or '-'}  cadence "
               f"{sub.cadence or 'default'}  tags {','.join(sub.tags) or 'all'}")
    for line in lines:
        who = f" (by {line.actor})" if line.actor else ""
        detail = f" {line.detail}" if line.detail else ""
        click.echo(f"  {line.at.isoformat(timespec='seconds')}  {line.event}{detail}{who}")
    if sub.status in ("unsubscribed", "bounced", "complained"):
        click.echo(f"  now {sub.status}")


@subscribers.command("remove")
@click.argument("email")
@click.option("--purge", is_flag=True, help="Erase the record and its delivery history.")
@pass_ctx
def remove(ctx: Context, email: str, purge: bool) -> None:
    """Unsubscribe an address (or erase it and its delivery history with --purge).

    \b
    Examples:
      feedpub subscribers remove reader@example.org
      feedpub subscribers remove reader@example.org --purge
    """
    with open_store(ctx.config) as store:
        sub = store.get_subscriber(email)
        if sub is None:
            raise SubscriberError(f"no subscriber {email!r} (see `feedpub subscribers list`)")
        if purge:
            store.delete_subscriber(sub.id)
        else:
            store.set_status(sub.id, "unsubscribed")
    click.echo(f"{'erased' if purge else 'unsubscribed'}: {sub.email}")


@subscribers.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@pass_ctx
def list_(ctx: Context, status: str | None, as_json: bool) -> None:
    """List subscribers: address, status, cadence, name, and the last bounce or complaint
    reason of those that have one.

    \b
    Examples:
      feedpub subscribers list --status active
      feedpub subscribers list --json
    """
    from ..jobs.bounces import subscriber_reasons

    reasons = subscriber_reasons(ctx.config)
    with open_store(ctx.config) as store:
        if as_json:
            click.echo(json.dumps([{**row, "bounce_reason": reasons.get(row["email"], "")}
                                   for row in export_rows(store, status)], indent=2))
            return
        for row in export_rows(store, status):
            reason = reasons.get(row["email"])
            click.echo(f"{row['email']:<40} {row['status']:<12} "
                       f"{row['cadence'] or '-':<7} {row['name']}"
                       + (f"  [{reason}]" if reason else ""))


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--pending", is_flag=True, help="Import as pending: they must confirm first.")
@pass_ctx
def import_(ctx: Context, file: Path, pending: bool) -> None:
    """Import subscribers from CSV (columns email, name, cadence, tags; header optional).

    The header is found after blank and `#` comment lines (`email`/`Email Address`, `name` or
    `First Name`/`Last Name`). Each bad row is reported as FILE:LINE: reason, the good ones
    are added, and the exit status is 1 if any row was bad. Importing twice changes nothing.

    \b
    Example:
      feedpub subscribers import readers.csv
    """
    with open_store(ctx.config) as store:
        report = import_csv(store, file, status="pending" if pending else "active")
    for error in report.errors:
        click.secho(error, fg="yellow", err=True)
    click.echo(f"imported {report.added} new, {report.existing} already present, "
               f"{len(report.errors)} bad row(s) skipped")
    if report.errors:
        sys.exit(1)


@subscribers.command("export")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write to this file instead of standard output.")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@pass_ctx
def export(ctx: Context, out: Path | None, status: str | None) -> None:
    """Export subscribers as CSV (standard output by default), in a form `import` reads.

    \b
    Example:
      feedpub subscribers export --out readers.csv --status active
    """
    with open_store(ctx.config) as store:
        if out is None:
            export_csv(store, sys.stdout, status)
            return
        with out.open("w", encoding="utf-8", newline="") as handle:
            count = export_csv(store, handle, status)
    click.echo(f"exported {count} subscriber(s) to {out}", err=True)


COMMANDS: list[click.Command] = [subscribers]
