"""`feedpub worker`: a sender process beside others, on a PostgreSQL store."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click

from .context import Context, pass_ctx


@click.command()
@click.option("--name", default=None, help="This worker's name in the queue's claims and the "
              "log (default: host:pid:random).")
@pass_ctx
def worker(ctx: Context, name: str | None) -> None:
    """Send the due messages of every issue, beside any number of other workers.

    Needs a PostgreSQL [store] url shared by all nodes (on SQLite, `feedpub run` alone sends
    and this command refuses). Each worker claims a few messages at a time, with a lease
    ([cluster] lease_seconds), and opens its own SMTP sessions; [delivery.smtp] rate holds
    over all workers together. SIGTERM or Ctrl-C: the messages in flight are finished and
    recorded, the rest handed back to the other workers.

    \b
    Examples:
      feedpub worker
      feedpub worker --name mail2 -v
    """
    from ..jobs.sendworker import require_shared_store, run_worker
    from ..logfmt import use_logfmt

    cfg = ctx.config
    require_shared_store(cfg)
    use_logfmt(logging.DEBUG if ctx.verbosity > 1 else logging.INFO
               if ctx.verbosity >= 0 else None)
    stop = threading.Event()

    def on_signal(sig: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = run_worker(cfg, stop=stop, name=name)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"worker {report.name}: {report.sent} sent, {report.failed} failed, "
               f"{report.retried} deferred")


COMMANDS: list[click.Command] = [worker]
