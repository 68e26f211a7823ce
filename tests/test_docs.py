"""Every command has help text ending with examples and an entry in the generated reference
(which is up to date); every config key is in the reference; CI runs the README's test
command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from feedpub.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = ROOT / "docs"
COMMANDS_REFERENCE = (DOCS / "reference" / "commands.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "feedpub") -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{prefix} {name} is listed but cannot be loaded"
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, path)


COMMANDS = list(_commands(cli))


def test_there_are_commands() -> None:
    names = {path for path, _ in COMMANDS}
    assert {"feedpub build", "feedpub check", "feedpub articles", "feedpub new"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_has_help_with_examples_and_a_reference_entry(path: str,
                                                              command: click.Command) -> None:
    assert command.help and len(command.help.strip()) > 10, f"{path} has no help text"
    result = CliRunner().invoke(cli, path.split()[1:] + ["--help"])
    assert result.exit_code == 0, result.output
    first_line = " ".join(command.help.strip().splitlines()[0].split())
    assert first_line in " ".join(result.output.split())
    body = result.output.split("\nOptions:")[0].rstrip().splitlines()
    example = [n for n, line in enumerate(body) if line.strip() in ("Example:", "Examples:")]
    assert example, f"{path} --help has no example"
    assert all(line.strip().startswith("feedpub ") or line.startswith("        ")
               for line in body[example[-1] + 1:]), f"{path}: the examples do not end the help"
    assert re.search(rf"^#+ `{re.escape(path)}`$", COMMANDS_REFERENCE, re.MULTILINE), (
        f"docs/reference/commands.md has no heading for `{path}` "
        "(run `python -m feedpub.cli.docs`)")


def test_the_generated_reference_is_up_to_date() -> None:
    from feedpub.cli.docs import generate

    for name, content in generate().items():
        committed = (DOCS / "reference" / name).read_text(encoding="utf-8")
        assert committed == content, (f"docs/reference/{name} is out of date: run "
                                      "`python -m feedpub.cli.docs`")


def test_every_config_key_is_in_the_reference_with_its_default() -> None:
    import dataclasses

    from feedpub.config import Config

    reference = (DOCS / "reference" / "config.md").read_text(encoding="utf-8")

    def walk(obj: object, prefix: str) -> Iterator[tuple[str, str, object]]:
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            if f.name == "root":
                continue
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                yield from walk(value, f"{prefix}{f.name}.")
            else:
                yield prefix.rstrip("."), f.name, value

    for section, key, value in walk(Config(), ""):
        block = reference.split(f"## `[{section}]`", 1)[1].split("\n## ", 1)[0]
        row = re.search(rf"^\| `{key}` \| `([^`]*)` \|", block, re.MULTILINE)
        assert row, f"{section}.{key} is not in docs/reference/config.md"
        shown = (json.dumps(list(value)) if isinstance(value, tuple | list)
                 else str(value).lower().strip('"'))
        assert shown in row.group(1).lower(), (section, key, row.group(1))


def test_readme_links_the_guides_and_the_license_is_mit() -> None:
    for target in ("docs/getting-started.md", "docs/reference/commands.md",
                   "docs/reference/config.md"):
        assert f"]({target})" in README, target
        assert (ROOT / target).exists(), target
    for link in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (ROOT / link).exists(), link
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")


def _setup_commands() -> list[str]:
    first_section = README.split("\n## ", 2)[1]
    return re.findall(r"^```(?:sh|bash)\n(.*?)\n```", first_section, re.MULTILINE | re.DOTALL)


def test_readme_starts_with_the_two_setup_commands() -> None:
    blocks = _setup_commands()
    assert len(blocks) >= 2
    assert "feedpub run" in blocks[0] or "feedpub build" in blocks[0]
    assert "pytest" in blocks[1]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = _setup_commands()[1].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def test_systemd_unit_has_no_comment_after_a_setting() -> None:
    """systemd reads `#` / `;` as a comment only at the start of a line: text after a setting
    would become part of its value (e.g. a file name that never exists)."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.md")))
    blocks = re.findall(r"^```ini\n(.*?)\n```", README + text, re.MULTILINE | re.DOTALL)
    assert blocks, "the docs have no systemd unit"
    for block in blocks:
        for line in block.splitlines():
            text = line.strip()
            if not text or text.startswith(("#", ";", "[")):
                continue
            assert "=" in text, line
            assert not re.search(r"\s[#;]", text), f"inline comment in the unit: {line!r}"


def test_every_lazily_loaded_command_is_where_the_table_says() -> None:
    import importlib

    from feedpub.cli import LAZY_COMMANDS

    found = {command.name: module for module in set(LAZY_COMMANDS.values())
             for command in importlib.import_module(f"feedpub.cli.{module}").COMMANDS}
    assert found == LAZY_COMMANDS


def test_build_does_not_load_the_database_mail_stack_or_language_registry(make_site) -> None:
    cfg = make_site({"2024-03-05-a.txt": "date 2024-03-05 A\n\nBody.\n"})
    code = ("import sys; from feedpub.cli import cli\n"
            "try:\n    cli.main(sys.argv[1:], prog_name='feedpub')\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print(sorted(m for m in ('sqlalchemy', 'feedpub.store', 'feedpub.delivery.sender', "
            "'email_validator', 'langcodes') if m in sys.modules))")
    args = [sys.executable, "-c", code, "--config", str(cfg.root / "config.toml"), "build"]
    for _ in range(2):  # a cold build, then a rebuild with nothing changed
        done = subprocess.run(args, capture_output=True, text=True, check=True)
        assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
