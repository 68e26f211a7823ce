"""What every command receives: the config path and verbosity, the config loaded on first use."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import Config, find_config, load_config
from ..errors import ConfigError


class Context:
    """What every command receives: the config path and verbosity; config is loaded lazily,
    and checked in full (`jobs.configcheck`) once, when first asked for."""

    def __init__(self, config_path: Path | None, verbosity: int) -> None:
        self.config_path = config_path
        self.verbosity = verbosity
        self._config: Config | None = None
        # Set by a one-shot command (`build`) whose process may end without the interpreter's
        # teardown once the command is done (see `cli.main`).
        self.quick_exit = False
        # What such a command made and leaves for the system to take back with the process,
        # rather than freeing it object by object (`jobs.publish.build_feeds(retain=...)`).
        self.leftovers: list[object] = []

    def _source(self) -> Path:
        return self.config_path if self.config_path is not None else find_config()

    @property
    def config(self) -> Config:
        if self._config is None:
            from ..jobs.configcheck import check_config

            source = self._source()
            self._config = check_config(load_config(source), str(source))
        return self._config

    def config_or_error(self) -> tuple[Config, ConfigError | None]:
        """The config, and the error of the full check if a setting is bad (for the read-only
        commands, which show what they can). A file that cannot be parsed still raises."""
        try:
            return self.config, None
        except ConfigError as exc:
            source = self._source()
            return load_config(source), exc


pass_ctx = click.make_pass_decorator(Context)
