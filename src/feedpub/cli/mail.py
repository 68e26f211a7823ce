"""Newsletter commands: `feedpub subscribers ...` and `feedpub digest ...`."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..errors import SubscriberError
from ..jobs import mailing
from ..store import CADENCES, STATUSES, open_store
from ..store.csvio import export_csv, export_rows, import_csv
from .context import Context, pass_ctx

cadence_option = click.option(
    "--cadence", type=click.Choice(CADENCES), default=None,
    help="Which digest (default: [digest] default_cadence).")


@click.group("subscribers")
def subscribers() -> None:
    """Manage newsletter subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default=None, help="The subscriber's name, used in the greeting.")
@click.option("--pending", is_flag=True, help="Add as pending: they must confirm first.")
@pass_ctx
def add(ctx: Context, email: str, name: str | None, pending: bool) -> None:
    """Add a subscriber (active unless --pending). An existing address is left as it is."""
    with open_store(ctx.config) as store:
        sub, created = store.add_subscriber(email, name,
                                            status="pending" if pending else "active")
    click.echo(f"{'added' if created else 'already present'}: {sub.email} ({sub.status})")


@subscribers.command("remove")
@click.argument("email")
@click.option("--purge", is_flag=True, help="Erase the record and its delivery history.")
@pass_ctx
def remove(ctx: Context, email: str, purge: bool) -> None:
    """Unsubscribe an address (or erase it with --purge)."""
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
    """List subscribers, with the last bounce or complaint reason of those that have one."""
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
    """Import subscribers from CSV (columns email, name, cadence, tags; header optional)."""
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
    """Export subscribers as CSV."""
    with open_store(ctx.config) as store:
        if out is None:
            export_csv(store, sys.stdout, status)
            return
        with out.open("w", encoding="utf-8", newline="") as handle:
            count = export_csv(store, handle, status)
    click.echo(f"exported {count} subscriber(s) to {out}", err=True)


@click.group("digest")
def digest() -> None:
    """Preview, send and follow newsletter issues."""


@digest.command("preview")
@cadence_option
@click.option("--subscriber", "email", default=None,
              help="This subscriber's next message (in their cadence unless --cadence).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              help="Folder for <cadence>-next.eml and <cadence>-next.html (default: here).")
@pass_ctx
def preview(ctx: Context, cadence: str | None, email: str | None, out: Path) -> None:
    """Write the exact next message as .eml and .html; sends and records nothing.

    With --subscriber: that subscriber's next message, in their own cadence; exits with
    status 1 and says why when they receive nothing in the next issue.
    """
    from ..jobs.deliverability import honesty_warnings

    _warn(ctx, honesty_warnings(ctx.config))
    which = mailing.preview_cadence(ctx.config, cadence, email)
    result = mailing.write_preview(ctx.config, which, out, email=email)
    if result is None:
        click.echo(f"{which} digest: nothing new since the last issue")
        return
    shown, paths = result
    click.echo(f"subject: {shown.subject}\nto: {shown.recipient} "
               f"({shown.recipients} recipient(s), {shown.articles} article(s))")
    for path in paths:
        click.echo(f"wrote {path}")


def _warn(ctx: Context, warnings: list[str]) -> None:
    if ctx.verbosity >= 0:
        for warning in warnings:
            click.secho(f"warning: {warning}", fg="yellow", err=True)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """Ctrl-C / SIGTERM finish the messages in flight and stop cleanly."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        click.echo("\nstopping after the messages in flight...", err=True)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@digest.command("send")
@cadence_option
@click.option("--dry-run", is_flag=True, help="Only report what would be sent.")
@click.option("--to", "to", default=None, help="Send one test copy to this address only.")
@pass_ctx
def send(ctx: Context, cadence: str | None, dry_run: bool, to: str | None) -> None:
    """Send the next issue (or finish an interrupted one)."""
    from ..jobs.deliverability import postal_warning

    cfg = ctx.config
    _warn(ctx, postal_warning(cfg))
    which = cadence or cfg.digest.default_cadence
    if dry_run or to:
        if to:
            sent = mailing.send_test_message(cfg, which, to)
            shown = sent[0] if sent else None
        else:
            shown = mailing.preview_digest(cfg, which)
        if shown is None:
            click.echo(f"{which} digest: nothing new since the last issue; nothing to send")
            return
        source = f"unfinished issue #{shown.issue_id}" if shown.issue_id else "a new issue"
        if to and sent:
            click.echo(f"test copy of {source} sent to {shown.recipient}: {sent[1]}")
        else:
            click.echo(f"would send {source}: {shown.subject!r}, {shown.articles} article(s) "
                       f"to {shown.recipients} subscriber(s)")
        return
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label=f"{which} issue")
            bar.__enter__()
        bar.update(done - bar.pos)

    show = sys.stdout.isatty() and ctx.verbosity >= 0
    try:
        with _stop_on_signals() as stop:
            report = mailing.send_digest(cfg, which, stop=stop,
                                         progress=progress if show else None)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    click.echo(report.summary)


@digest.command("status")
@click.option("--limit", default=20, show_default=True, help="Most recent issues to show.")
@pass_ctx
def status(ctx: Context, limit: int) -> None:
    """Show each issue's messages: pending, sent, failed."""
    rows = mailing.digest_status(ctx.config, limit)
    if not rows:
        click.echo("no issue yet")
        return
    click.echo(f"{'issue':>6} {'cadence':<8} {'created (UTC)':<17} {'state':<8} "
               f"{'pending':>8} {'sent':>8} {'failed':>8}")
    for r in rows:
        click.echo(f"{r.issue_id:>6} {r.cadence:<8} {r.created:%Y-%m-%d %H:%M} {r.status:<8} "
                   f"{r.pending:>8} {r.sent:>8} {r.failed:>8}")
    _mailed_reports([r.issue_id for r in rows], ctx)


def _mailed_reports(issue_ids: list[int], ctx: Context) -> None:
    """Below the table: bounces and complaints that came back by mail, with their reasons."""
    from ..jobs.bounces import issue_reports

    per_issue, recent = issue_reports(ctx.config, issue_ids)
    if not per_issue:
        return
    click.echo("reported back by mail:")
    for issue_id in sorted(per_issue, reverse=True):
        kinds = per_issue[issue_id]
        click.echo(f"  #{issue_id}: " + ", ".join(
            f"{kinds[k]} {k}" for k in ("hard", "soft", "complaint", "unsubscribe")))
    for line in recent:
        click.echo(f"  {line}")


COMMANDS: list[click.Command] = [subscribers, digest]
