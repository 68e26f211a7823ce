"""Commands of the daemon area: `run` and `status`."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from ..errors import FeedpubError
from .context import Context, pass_ctx


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: [web] host).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: [web] port; "
              "0 picks a free one). On a local site, links follow it.")
@click.option("--dev", is_flag=True, help="Local tools: /_outbox/ shows the mail written to "
              "the Maildir, and the home page lists articles that could not be published.")
@click.option("--drafts", is_flag=True, help="Also build drafts and future-dated entries into "
              "the site (only with a loopback base_url; never into a digest).")
@click.option("--no-send", is_flag=True, help="Send no mail: scheduled digests are planned "
              "and left to `feedpub worker` processes (PostgreSQL store only).")
@pass_ctx
def run(ctx: Context, host: str | None, port: int | None, dev: bool, drafts: bool,
        no_send: bool) -> None:
    """Build the feeds, serve them and the subscription pages, and send digests on schedule.

    Rebuilds when articles/ changes and when a future-dated article comes due. Stop with
    Ctrl-C or SIGTERM; a digest being sent is checkpointed and resumes on the next run. On a
    PostgreSQL store several nodes may run: one leader fires the scheduled jobs, the others
    stand by and take over within [cluster] failover_seconds.

    \b
    Examples:
      feedpub run --dev --drafts --port 8092
      feedpub run --no-send
    """
    from ..daemon.run import run as run_daemon

    run_daemon(ctx.config, host, port, verbosity=ctx.verbosity, dev=dev, drafts=drafts,
               send=not no_send)


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else value


@click.command()
@pass_ctx
def status(ctx: Context) -> None:
    """Show whether the daemon runs, its next digests, the last build and issue, the outbox.

    Also lists the articles the last build could not publish. With a config error, shows
    what it can read and exits with status 2.

    \b
    Example:
      feedpub status
    """
    from ..daemon.status import status as daemon_status

    cfg, config_error = ctx.config_or_error()
    if config_error is not None:
        click.secho(f"error: {config_error}", fg="red", err=True)
        click.secho("status below is read despite the config error; fix it before "
                    "`feedpub run`", fg="yellow", err=True)
    try:
        info = daemon_status(cfg)
    except FeedpubError as exc:
        if config_error is None:
            raise
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(config_error.exit_code)
    click.echo(f"daemon:       {'running, pid ' + str(info.pid) if info.pid else 'not running'}")
    for number, run_ in enumerate(info.next_runs):
        label = "next runs:" if number == 0 else ""
        click.echo(f"{label:<14}{run_.job} {_when(run_.next_run)}")
    click.echo(f"last build:   {_when(info.last_build)}")
    if info.next_publish:
        click.echo(f"next publish: {_when(info.next_publish)} (rebuild for a future-dated "
                   "article)")
    if info.last_issue:
        for cadence, when in sorted(info.last_issue.items()):
            click.echo(f"last issue:   {cadence} {when}")
    else:
        click.echo("last issue:   -")
    counts = ", ".join(f"{k} {v}" for k, v in info.subscribers.items())
    click.echo(f"subscribers:  {counts or '-'}")
    if info.outbox is not None:
        click.echo("outbox:       " + (", ".join(f"{k} {v}" for k, v in info.outbox.items())
                                       or "empty"))
    if info.skipped:
        click.secho(f"not published: {len(info.skipped)} article(s) with errors (last build)",
                    fg="red")
        for error in info.skipped:
            click.secho(f"  {error}", fg="red")
    if info.queue is not None:
        click.echo(f"queue:        {info.queue.size} to send, {info.queue.deferred} deferred")
        oldest = info.queue.oldest_deferred
        if oldest is not None:
            click.echo(f"oldest deferred: issue #{oldest.issue_id} {oldest.email}, queued "
                       f"{_when(oldest.queued_at)}, {oldest.attempts} tries, next "
                       f"{_when(oldest.next_attempt)}: {oldest.reply}")
    if info.relay_error is not None:
        click.echo(f"warning: the mail server could not be used since "
                   f"{_when(info.relay_error.since)}: {info.relay_error.error}; messages "
                   "wait in the queue (`feedpub digest send --retry-now` once it is fixed)")
    if info.mail_reports:
        click.echo("by mail:      " + ", ".join(f"{k} {v}" for k, v in
                                                info.mail_reports.items()))
        click.echo(f"complaints:   {info.complaint_rate}")
    for note in info.notes:
        click.echo(f"note: {note}")
    if config_error is not None:
        sys.exit(config_error.exit_code)


COMMANDS: list[click.Command] = [run, status]
