"""The `feedpub` command line: a thin click layer over the library.

Each command loads the config, makes one call into `feedpub.jobs` or `feedpub.store`, and
prints the result. Only this package maps `FeedpubError` to exit codes.

The top of the house: nothing imports it (the console script `feedpub` enters here).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
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
    "subscribers": "subscribers", "digest": "mail",
    "run": "daemon", "status": "daemon",
    "init": "init", "outbox": "outbox", "db": "db",
    "dkim": "deliverability", "bounces": "deliverability",
    "worker": "worker",
}

# The group's own options, also accepted after the command (`feedpub check -q`).
_GLOBAL_FLAGS = frozenset({"-q", "--quiet", "-v", "--verbose"})
_GLOBAL_VALUED = frozenset({"--config"})


def hoist_global_options(args: list[str]) -> list[str]:
    """Move the group's options written after the command to before it, so `feedpub check -q`
    means `feedpub -q check`. Everything after `--` is left as it is."""
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args) and args[index].startswith("-"):  # options before the command
        front.append(args[index])
        if args[index] in _GLOBAL_VALUED and index + 1 < len(args):
            index += 1
            front.append(args[index])
        index += 1
    if index >= len(args):
        return args
    rest.append(args[index])  # the command
    index += 1
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        if arg in _GLOBAL_FLAGS or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            front.append(arg)
        elif arg in _GLOBAL_VALUED and index + 1 < len(args):
            front.extend(args[index:index + 2])
            index += 1
        elif arg.split("=", 1)[0] in _GLOBAL_VALUED and "=" in arg:
            front.append(arg)
        else:
            rest.append(arg)
        index += 1
    return front + rest


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

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(list(args)))

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FeedpubError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=FeedpubGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Path to config.toml (default: $FEEDPUB_CONFIG, else config.toml "
              "in this folder or the nearest parent that has one).")
@click.option("-v", "--verbose", count=True, help="More output (repeat for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(__version__, prog_name="feedpub")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int, quiet: bool) -> None:
    """Publish RSS, Atom and JSON feeds from a folder of articles, and mail digests.

    Global options (-q, -v, --config) may also follow the command.

    \b
    Examples:
      feedpub init mysite && cd mysite && feedpub run
      feedpub check -q
    """
    verbosity = -1 if quiet else verbose
    level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # `main` passes in the Context it reads afterwards (`quick_exit`); other callers do not.
    context = ctx.obj if isinstance(ctx.obj, Context) else Context(None, 0)
    context.config_path, context.verbosity = config_path, verbosity
    ctx.obj = context


def main() -> None:
    """Console-script entry point.

    A one-shot command that asks for it (`Context.quick_exit`) ends the process once it is
    done, output flushed, without the interpreter's teardown: after a large build, clearing
    every module and collecting what is left takes longer (tens of milliseconds) than the
    system takes to reclaim the whole process.
    """
    context = Context(None, 0)
    try:
        cli(prog_name="feedpub", obj=context)
    except SystemExit as exc:
        if context.quick_exit and (exc.code is None or isinstance(exc.code, int)) \
                and not _observed():
            _exit_now(exc.code or 0)
        raise


def _observed() -> bool:
    """Whether a profiler, a tracer (coverage, a debugger) or tracemalloc watches this
    process: they report at the interpreter's exit, which must then run."""
    import _tracemalloc  # built in: no cost to import

    return (sys.getprofile() is not None or sys.gettrace() is not None
            or _tracemalloc.is_tracing())


def _exit_now(code: int) -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
