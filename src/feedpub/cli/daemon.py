"""Commands of the daemon area: `run` and `status`."""

from __future__ import annotations

from datetime import datetime

import click

from .context import Context, pass_ctx


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: [web] host).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: [web] port; "
              "0 picks a free one).")
@pass_ctx
def run(ctx: Context, host: str | None, port: int | None) -> None:
    """Build the feeds, serve them and the subscription pages, and send digests on schedule.

    Rebuilds when articles/ changes and when a future-dated article comes due. Stop with
    Ctrl-C or SIGTERM; a digest being sent is checkpointed and resumes on the next run.
    """
    from ..daemon.run import run as run_daemon

    run_daemon(ctx.config, host, port, verbosity=ctx.verbosity)


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else value


@click.command()
@pass_ctx
def status(ctx: Context) -> None:
    """Show whether the daemon runs, its next digests, the last build and issue, the outbox."""
    from ..daemon.status import status as daemon_status

    info = daemon_status(ctx.config)
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
    if info.mail_reports:
        click.echo("by mail:      " + ", ".join(f"{k} {v}" for k, v in
                                                info.mail_reports.items()))
        click.echo(f"complaints:   {info.complaint_rate}")
    for note in info.notes:
        click.echo(f"note: {note}")


COMMANDS: list[click.Command] = [run, status]
