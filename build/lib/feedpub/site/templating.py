"""Jinja2 environment: the operator's templates/ folder first, then the built-in defaults."""

from __future__ import annotations

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

from ..config import Config


def environment(cfg: Config, *, autoescape: bool = True) -> Environment:
    """A Jinja2 environment for `cfg`; autoescape on unless rendering plain text."""
    loader = ChoiceLoader([FileSystemLoader(str(cfg.templates_dir)),
                           PackageLoader("feedpub", "default_templates")])
    return Environment(loader=loader, autoescape=autoescape, undefined=StrictUndefined,
                       keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
