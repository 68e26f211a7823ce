"""`feedpub outbox`: read the messages the maildir backend wrote."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

import click

from ..jobs import localmail
from .context import Context, pass_ctx


@click.group("outbox", invoke_without_command=True)
@click.pass_context
def outbox(click_ctx: click.Context) -> None:
    """Read the local outbox: the messages the maildir backend wrote.

    Without a subcommand, lists them (as `feedpub outbox list`).

    \b
    Examples:
      feedpub outbox
      feedpub outbox show 3
    """
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(list_)


@outbox.command("list")
@pass_ctx
def list_(ctx: Context) -> None:
    """List the messages, oldest first: number, date, recipient and subject.

    \b
    Example:
      feedpub outbox list
    """
    entries = localmail.list_outbox(ctx.config)
    if not entries:
        click.echo(f"the outbox {localmail.maildir_path(ctx.config)} is empty")
        return
    for e in entries:
        when = e.date.isoformat(timespec="minutes") if e.date else "-"
        click.echo(f"{e.number:>4}  {when:<25} {e.to:<32} {e.subject}")


@outbox.command("show")
@click.argument("number", type=click.IntRange(min=1))
@click.option("--html", "as_html", is_flag=True, help="Print the HTML part instead of the text.")
@pass_ctx
def show(ctx: Context, number: int, as_html: bool) -> None:
    """Print message NUMBER decoded, with its links whole, then the list of its links.

    \b
    Examples:
      feedpub outbox show 1
      feedpub outbox show 1 --html
    """
    message = localmail.read_message(ctx.config, number)
    for key, value in message.headers:
        click.echo(f"{key}: {value}")
    click.echo("")
    click.echo(message.html if as_html else message.text)
    if message.links:
        click.echo("links:")
        for url in message.links:
            click.echo(f"  {url}")


@outbox.command("open")
@click.argument("number", type=click.IntRange(min=1))
@pass_ctx
def open_(ctx: Context, number: int) -> None:
    """Open message NUMBER's HTML part in the web browser.

    \b
    Example:
      feedpub outbox open 2
    """
    message = localmail.read_message(ctx.config, number)
    body = message.html or f"<pre>{html.escape(message.text)}</pre>"
    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False,
                                     encoding="utf-8") as handle:
        handle.write(body)
    click.echo(f"opening {handle.name}")
    click.launch(Path(handle.name).as_uri())


COMMANDS: list[click.Command] = [outbox]
