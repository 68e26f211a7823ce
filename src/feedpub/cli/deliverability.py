"""Deliverability commands: `feedpub dkim keygen` and `feedpub bounces fetch`."""

from __future__ import annotations

from pathlib import Path

import click

from .context import Context, pass_ctx


@click.group("dkim")
def dkim() -> None:
    """DKIM keys for signing the digests.

    \b
    Example:
      feedpub dkim keygen --selector news2026
    """


@dkim.command("keygen")
@click.option("--selector", required=True, help="The DNS selector, e.g. news2026.")
@click.option("--algorithm", type=click.Choice(["rsa", "ed25519"]), default="rsa",
              show_default=True, help="RSA 2048 (read everywhere) or Ed25519 (a second key).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Key file to write (default: <data>/dkim/<selector>.key).")
@click.option("--domain", default=None,
              help="Signing domain (default: [delivery.dkim] domain, else from_address's).")
@pass_ctx
def keygen(ctx: Context, selector: str, algorithm: str, out: Path | None,
           domain: str | None) -> None:
    """Write a new DKIM private key (mode 0600) and print the DNS TXT record to publish.

    Then set [delivery.dkim] selector and key_file in config.toml.

    \b
    Examples:
      feedpub dkim keygen --selector news2026
      feedpub dkim keygen --selector news2026e --algorithm ed25519
    """
    from ..delivery.dkim import generate_key, signing_domain

    cfg = ctx.config
    path = out or cfg.data_dir / "dkim" / f"{selector}.key"
    key = generate_key(path, domain or signing_domain(cfg), selector, algorithm)
    record = key.dns_record()
    chunks = " ".join(f'"{record[i:i + 250]}"' for i in range(0, len(record), 250))
    click.echo(f"wrote {path} (mode 0600); publish this TXT record:\n")
    click.echo(f"{key.dns_name()}. IN TXT ( {chunks} )\n")
    click.echo(f"then in config.toml:\n[delivery.dkim]\nselector = \"{selector}\"\n"
               f"key_file = \"{path}\"")


@click.group("bounces")
def bounces() -> None:
    """The bounce mailbox: bounces, spam complaints and unsubscribe mails.

    \b
    Example:
      feedpub bounces fetch
    """


@bounces.command("fetch")
@pass_ctx
def fetch(ctx: Context) -> None:
    """Read the [bounces] mailbox once and apply what it says.

    Hard bounces count toward bounce_limit, soft ones score lower, complaints and
    unsubscribe mails unsubscribe at once. Handled mail is removed; the rest stays. An IMAP
    mailbox's password comes from FEEDPUB_IMAP_PASSWORD.

    \b
    Example:
      feedpub bounces fetch
    """
    from ..jobs.bounces import fetch_bounces

    click.echo(fetch_bounces(ctx.config).summary)


COMMANDS: list[click.Command] = [dkim, bounces]
