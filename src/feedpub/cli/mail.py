"""Commands of this area; each is registered through COMMANDS."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
