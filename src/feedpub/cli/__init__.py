"""The `feedpub` command line: a thin click layer over the library.

Each command loads the config, makes one call into `feedpub.jobs` or `feedpub.store`, and
prints the result. Only this package maps `FeedpubError` to exit codes.

The top of the house: nothing imports it (the console script `feedpub` enters here).
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import FeedpubError
from .context import Context

# Which module of this package defines each command. A command's module is imported only
# when the command runs (or help lists it), so `feedpub build` does not load the database
# and mail stack, which costs more start-up time than a no-change rebuild itself.
LAZY_COMMANDS = {
    "build": "publish", "check": "publish", "articles": "publish", "new": "publish",
    "subscribers": "mail", "digest": "mail",
    "run": "daemon", "status": "daemon",
    "dkim": "deliverability", "bounces": "deliverability",
}


class FeedpubGroup(click.Group):
    """A click group that loads its commands lazily (`LAZY_COMMANDS`) and turns FeedpubError
    into a one-line message and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = LAZY_COMMANDS.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            for command in importlib.import_module(f"{__name__}.{module}").COMMANDS:
                self.add_command(command)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FeedpubError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=FeedpubGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Path to config.toml (default: ./config.toml).")
@click.option("-v", "--verbose", count=True, help="More output (repeat for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(__version__, prog_name="feedpub")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int, quiet: bool) -> None:
    """Publish RSS, Atom and JSON feeds from a folder of articles, and mail digests."""
    verbosity = -1 if quiet else verbose
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config_path, verbosity)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="feedpub")
