"""Publishing commands: build, check, articles, new."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click

from ..jobs import publish
from .context import Context, pass_ctx
from .progress import LazyProgress


@click.command()
@click.option("--strict", is_flag=True, help="Write nothing if any article is bad.")
@click.option("--force", is_flag=True, help="Re-read every article and rewrite every file.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes for a large build; 0 means one per CPU core.")
@pass_ctx
def build(ctx: Context, strict: bool, force: bool, jobs: int) -> None:
    """Build the RSS, Atom and JSON feeds (and pages) into public/.

    Bad articles are reported with file, line and fix; the others are still published and
    the command exits with status 1. With --strict nothing is written if any article is bad.
    A large build (about a thousand changed articles or more) uses every CPU core; the output
    is byte for byte what one process writes. Files an earlier build wrote that are no longer
    part of the site are removed. The summary counts published entries, drafts, scheduled
    (future-dated) entries and skipped (bad) files.

    \b
    Examples:
      feedpub build
      feedpub build --strict -q
    """
    ctx.quick_exit = True  # nothing is left to clean up once the build is done
    with LazyProgress("Building", enabled=ctx.verbosity >= 0) as progress:
        report = publish.build_feeds(ctx.config, strict=strict, force=force, progress=progress,
                                     workers=jobs or None, retain=ctx.leftovers)
    if ctx.verbosity >= 0:  # -q: errors only
        for warning in report.warnings:
            click.secho(f"warning: {warning}", fg="yellow", err=True)
    for error in report.skipped:
        click.secho(f"error: {error}", fg="red", err=True)
    if strict and report.skipped:
        click.secho(f"{len(report.skipped)} bad article(s); --strict: nothing was written.",
                    fg="red", err=True)
        sys.exit(1)
    if ctx.verbosity >= 0:
        state = "up to date" if report.up_to_date else f"{len(report.written)} file(s) written"
        click.echo(f"{report.summary()}; {report.outputs} file(s) in "
                   f"{ctx.config.public_dir}: {state}.")
    if report.skipped:
        click.secho(f"{len(report.skipped)} article(s) skipped because of errors.", fg="red",
                    err=True)
        sys.exit(1)


@click.command()
@pass_ctx
def check(ctx: Context) -> None:
    """Lint the articles and validate the built feeds; exit 1 on any problem.

    Articles: errors and warnings, drafts and future entries listed. Feeds: well-formed XML,
    Atom against the RFC 4287 schema, JSON Feed shape. With -q only the problems are printed.

    \b
    Examples:
      feedpub check
      feedpub check -q
    """
    from ..jobs import check as check_job  # not needed by the other commands

    report = check_job.check_site(ctx.config)
    if ctx.verbosity >= 0:  # -q: errors only
        for warning in report.warnings:
            click.secho(f"warning: {warning}", fg="yellow")
    for problem in report.problems:
        click.secho(f"problem: {problem}", fg="red")
    if ctx.verbosity >= 0:
        click.echo(f"{report.articles} article(s) read, {report.checked} feed file(s) "
                   f"validated, {len(report.problems)} problem(s), "
                   f"{len(report.warnings)} warning(s).")
    if not report.ok:
        sys.exit(1)


@click.command("articles")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def list_articles(ctx: Context, as_json: bool) -> None:
    """List the articles: date, title, tags and file (drafts, scheduled entries and bad files
    marked).

    --json gives each article with `draft` and `scheduled` flags, and each bad file as an
    error object with `file`, `line`, `message` and `fix`.

    \b
    Examples:
      feedpub articles
      feedpub articles --json
    """
    result = publish.load_site(ctx.config)
    now = datetime.now(UTC)
    rows = [{"date": a.published.isoformat(), "title": a.title, "tags": list(a.tags),
             "file": a.source, "id": a.id, "draft": a.draft,
             "scheduled": not a.draft and a.published > now} for a in result.articles]
    if as_json:
        errors = [{"file": e.source, "line": e.line, "message": e.reason, "fix": e.fix}
                  for e in result.errors]
        click.echo(json.dumps({"articles": rows, "errors": errors}, ensure_ascii=False,
                              indent=2))
        return
    for a in result.articles:
        if a.draft:
            mark = " [draft]"
        elif a.published > now:
            mark = f" [scheduled {a.published.isoformat(timespec='minutes')}]"
        else:
            mark = ""
        click.echo(f"{a.published.date().isoformat()}  {a.title}{mark}  "
                   f"[{', '.join(a.tags)}]  {a.source}")
    for error in result.errors:
        click.secho(f"error: {error}", fg="red", err=True)


@click.command()
@click.argument("title")
@click.option("--tags", default="", help="Comma-separated tags, e.g. --tags 'city, transport'.")
@pass_ctx
def new(ctx: Context, title: str, tags: str) -> None:
    """Create an entry dated now in articles/ from the new-article template.

    The first line carries the date and the time of day (`date 2026-12-06T08:12 Title`), so
    the entry is published as soon as its `Draft: yes` line is deleted. Prints the path;
    never overwrites a file.

    \b
    Examples:
      feedpub new "Harbour ferry adds an evening crossing"
      feedpub new "Market day" --tags "city, market"
    """
    tag_list = [t.strip() for t in tags.split(",") if t.strip()]
    path = publish.new_article(ctx.config, title, tag_list)
    click.echo(str(path))


COMMANDS: list[click.Command] = [build, check, list_articles, new]
