"""What every command receives: the config path and verbosity, the config loaded on first use."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Config, load_config


class Context:
    """What every command receives: the config path and verbosity; config is loaded lazily."""

    def __init__(self, config_path: Path | None, verbosity: int) -> None:
        self.config_path = config_path
        self.verbosity = verbosity
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


pass_ctx = click.make_pass_decorator(Context)
