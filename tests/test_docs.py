"""Every command has help text and a README entry; CI runs the README's test command."""

from __future__ import annotations

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
def test_command_has_help_and_a_readme_entry(path: str, command: click.Command) -> None:
    assert command.help and len(command.help.strip()) > 10, f"{path} has no help text"
    result = CliRunner().invoke(cli, path.split()[1:] + ["--help"])
    assert result.exit_code == 0, result.output
    first_line = " ".join(command.help.strip().splitlines()[0].split())
    assert first_line in " ".join(result.output.split())
    assert re.search(rf"^#+ `{re.escape(path)}\b", README, re.MULTILINE), (
        f"README.md has no heading for `{path}`")


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
    blocks = re.findall(r"^```ini\n(.*?)\n```", README, re.MULTILINE | re.DOTALL)
    assert blocks, "README.md has no systemd unit"
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
