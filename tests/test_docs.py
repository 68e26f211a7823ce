"""Every command has help text and a README entry; CI runs the README's test command."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from feedpub.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "feedpub") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
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
