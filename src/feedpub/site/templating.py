"""Jinja2 environment: the operator's templates/ folder first, then the built-in defaults,
with the text of the built-in templates translated for `[site] language` (gettext)."""

from __future__ import annotations

from urllib.parse import urljoin

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

from ..config import Config
from ..i18n import install


def environment(cfg: Config, *, autoescape: bool = True) -> Environment:
    """A Jinja2 environment for `cfg`; autoescape on unless rendering plain text."""
    loader = ChoiceLoader([FileSystemLoader(str(cfg.templates_dir)),
                           PackageLoader("feedpub", "default_templates")])
    env = Environment(loader=loader, autoescape=autoescape, undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    site = cfg.site
    env.globals.update(
        logo_url=urljoin(site.base_url, site.logo) if site.logo else "",
        icon_url=urljoin(site.base_url, site.icon) if site.icon else "",
        newsletter_archive=cfg.newsletter.public_archive,
        tag_paths={},
    )
    return install(env, site.language)
