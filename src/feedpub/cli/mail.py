"""Newsletter commands: `feedpub digest ...` (`feedpub subscribers` is in `subscribers`)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..errors import DeliveryError
from ..jobs import mailing, queue
from ..store import CADENCES
from .context import Context, pass_ctx

cadence_option = click.option(
    "--cadence", type=click.Choice(CADENCES), default=None,
    help="Which digest (default: [digest] default_cadence).")


@click.group("digest")
def digest() -> None:
    """Preview, send and follow newsletter issues.

    \b
    Examples:
      feedpub digest preview --latest 3
      feedpub digest send --dry-run
    """


@digest.command("preview")
@cadence_option
@click.option("--subscriber", "email", default=None,
              help="This subscriber's next message (in their cadence unless --cadence).")
@click.option("--latest", type=click.IntRange(min=1), default=None,
              help="Render the newest N articles as an issue, whatever was sent.")
@click.option("--issue", "issue_id", type=click.IntRange(min=1), default=None,
              help="Re-render past issue K exactly as it was sent.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("."),
              help="Folder for <cadence>-next.eml and <cadence>-next.html (default: here).")
@pass_ctx
def preview(ctx: Context, cadence: str | None, email: str | None, latest: int | None,
            issue_id: int | None, out: Path) -> None:
    """Write the exact next message as .eml and .html; sends and records nothing.

    With --subscriber: that subscriber's next message, in their own cadence; exits with
    status 1 and says why when they receive nothing in the next issue. --latest N works on a
    fresh site (for template work); --issue K shows a past issue as sent
    (issue-K.eml/.html).

    \b
    Examples:
      feedpub digest preview
      feedpub digest preview --latest 3 --out /tmp
    """
    from ..jobs import previews
    from ..jobs.deliverability import honesty_warnings

    _warn(ctx, honesty_warnings(ctx.config))

    if latest is not None and issue_id is not None:
        raise click.UsageError("give --latest or --issue, not both")
    if issue_id is not None:
        shown = previews.preview_issue(ctx.config, issue_id, email=email)
        paths = previews.write_files(shown, out, f"issue-{issue_id}")
    elif latest is not None:
        which = cadence or ctx.config.digest.default_cadence
        shown = previews.preview_latest(ctx.config, which, latest)
        paths = previews.write_files(shown, out, f"{which}-latest")
    else:
        which = mailing.preview_cadence(ctx.config, cadence, email)
        result = mailing.write_preview(ctx.config, which, out, email=email)
        if result is None:
            click.echo(previews.nothing_new(ctx.config, which))
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
@click.option("--retry-now", is_flag=True,
              help="Make deferred messages due at once (after fixing the mail server).")
@pass_ctx
def send(ctx: Context, cadence: str | None, dry_run: bool, to: str | None,
         retry_now: bool) -> None:
    """Send the due messages of every unfinished issue, then the next issue if one is due.

    Messages deferred by a temporary failure wait for their next attempt (see `digest
    status`); --retry-now makes them due at once. --dry-run only reports what would be sent;
    --to sends one test copy and records nothing. While another process sends the same
    cadence, exits with status 1 naming that process.

    \b
    Examples:
      feedpub digest send --dry-run
      feedpub digest send --to me@example.org
      feedpub digest send --cadence weekly --retry-now
    """
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
            from ..jobs.previews import nothing_new

            click.echo(f"{nothing_new(cfg, which)}; nothing to send")
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
        if bar is not None and bar.length != total:  # the next issue of the run
            bar.__exit__(None, None, None)
            bar = None
        if bar is None:
            bar = click.progressbar(length=total, label=f"{which} issue")
            bar.__enter__()
        bar.update(max(0, done - bar.pos))

    show = sys.stdout.isatty() and ctx.verbosity >= 0
    if retry_now:
        click.echo(f"{queue.retry_now(cfg)} deferred message(s) made due now")
    try:
        with _stop_on_signals() as stop:
            others = tuple(c for c in CADENCES if c != which)
            earlier = queue.run_queue(cfg, stop=stop, cadences=others)
            if earlier.error is not None:
                raise DeliveryError(earlier.error)
            report = mailing.send_digest(cfg, which, stop=stop,
                                         progress=progress if show else None)
    except DeliveryError as exc:
        queue.note_relay(cfg, exc)
        raise
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    queue.note_relay(cfg, None)
    for other in earlier.issues:
        click.echo(other.summary)
    click.echo(report.summary)


@digest.command("status")
@click.option("--limit", default=20, show_default=True, help="Most recent issues to show.")
@pass_ctx
def status(ctx: Context, limit: int) -> None:
    """Show each issue's messages: sent, deferred, failed, pending.

    For deferred messages, the next attempt and the server's last reply follow the issue.

    \b
    Example:
      feedpub digest status --limit 5
    """
    rows = mailing.digest_status(ctx.config, limit)
    if not rows:
        click.echo("no issue yet")
        return
    click.echo(f"{'issue':>6} {'cadence':<8} {'created (UTC)':<17} {'state':<8} "
               f"{'sent':>8} {'deferred':>8} {'failed':>8} {'pending':>8}")
    for r in rows:
        click.echo(f"{r.issue_id:>6} {r.cadence:<8} {r.created:%Y-%m-%d %H:%M} {r.status:<8} "
                   f"{r.sent:>8} {r.deferred:>8} {r.failed:>8} {r.pending:>8}")
        if r.deferred and r.next_attempt is not None:
            click.echo(f"{'':>6} next attempt {r.next_attempt:%Y-%m-%d %H:%M:%S} UTC, "
                       f"last reply: {r.last_reply or '-'}")
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


COMMANDS: list[click.Command] = [digest]
