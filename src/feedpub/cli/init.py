"""`feedpub init`: create a new site folder."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from ..config import DigestConfig, SiteConfig


def _ask(value: str | None, prompt: str, default: str) -> str:
    """The option's value, else the answer to a question (else the default, when there is
    nobody to ask)."""
    if value is not None:
        return value
    if not sys.stdin.isatty():
        return default
    return str(click.prompt(prompt, default=default))


@click.command()
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False), default=Path("."))
@click.option("--title", default=None, help="The site's title (asked when not given).")
@click.option("--url", "base_url", default=None,
              help="The address the site is served at, e.g. https://news.example.org/ "
                   "(asked when not given).")
@click.option("--from", "from_address", default=None,
              help="The newsletter's sender address (asked when not given).")
def init(folder: Path, title: str | None, base_url: str | None,
         from_address: str | None) -> None:
    """Create a new site in FOLDER (default: here): config.toml, articles/, templates/.

    Writes the fully commented config.toml, one example article, an empty templates/ folder
    with a note on overriding the built-in templates, and a .gitignore for public/ and data/.
    Asks for the title, the address and the sender unless given; refuses to overwrite.

    \b
    Examples:
      feedpub init mysite
      feedpub init mysite --title "Harbour News" --url https://news.example.org/ \\
          --from letters@news.example.org
    """
    from ..jobs.scaffold import SiteAnswers, create_site

    answers = SiteAnswers(
        title=_ask(title, "Site title", SiteConfig.title),
        base_url=_ask(base_url, "Address the site is served at", SiteConfig.base_url),
        from_address=_ask(from_address, "Newsletter sender address", DigestConfig.from_address),
    )
    written = create_site(folder, answers, datetime.now(UTC))
    for path in written:
        click.echo(f"wrote {path}")
    where = "" if folder == Path(".") else f"cd {folder} && "
    click.echo(f"Next: {where}feedpub run   (then open {answers.base_url.rstrip('/')}/)")


COMMANDS: list[click.Command] = [init]
