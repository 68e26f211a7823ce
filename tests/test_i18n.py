"""Languages: every built-in template rendered in each shipped language, with no string left
untranslated; Babel dates; lang and dir of the digest."""

from __future__ import annotations

import gettext
import io
from datetime import UTC, datetime
from importlib import resources

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from feedpub import i18n
from feedpub.mail.digest import render_digest
from feedpub.site.pages import page_environment, render_page, text_environment
from feedpub.site.plan import plan_pages
from mail_helpers import NOW, article

TEMPLATES = resources.files("feedpub") / "default_templates"


class Recording(gettext.NullTranslations):
    """A catalog that notes every message it has no translation for."""

    def __init__(self, catalog: gettext.GNUTranslations) -> None:
        super().__init__()
        self.catalog = catalog._catalog  # type: ignore[attr-defined]
        self.missing: set[str] = set()

    def gettext(self, message: str) -> str:
        found = self.catalog.get(message)
        if not found:
            self.missing.add(message)
            return message
        return found

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        found = self.catalog.get((singular, 0 if n == 1 else 1))
        if not found:
            self.missing.add(singular)
            return singular if n == 1 else plural
        return found


def _site(make_site, language: str):
    cfg = make_site()
    text = (cfg.root / "config.toml").read_text(encoding="utf-8")
    (cfg.root / "config.toml").write_text(
        text.replace('timezone = "Europe/Berlin"',
                     f'timezone = "Europe/Berlin"\nlanguage = "{language}"'))
    from feedpub.config import load_config

    return load_config(cfg.root / "config.toml")


def _extracted() -> set[str]:
    found = set()
    for _, _, message, _, _ in extract_from_dir(
            str(TEMPLATES), method_map=[("**.j2", "jinja2")]):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("language", i18n.SHIPPED)
def test_catalog_is_complete(language: str) -> None:
    path = resources.files("feedpub") / i18n.catalog_path(language)
    with path.open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog
                  if m.id and all(m.string if isinstance(m.string, tuple) else (m.string,))
                  and not m.fuzzy}
    assert _extracted() - translated == set()


@pytest.mark.parametrize("language", i18n.SHIPPED)
def test_shipped_compiled_catalog_matches_its_source(language: str) -> None:
    """The .mo read at run time is the .po compiled: an edited .po must be compiled again."""
    path = resources.files("feedpub") / i18n.catalog_path(language)[:-3]
    compiled = (path.parent / (path.name + ".mo")).read_bytes()
    assert compiled == i18n.compile_catalog(language), (
        f"{path}.mo is stale: run `.venv/bin/pybabel compile -d src/feedpub/locale -D feedpub`")
    assert i18n.translations(language).gettext("Subscribe") == \
        gettext.GNUTranslations(io.BytesIO(i18n.compile_catalog(language))).gettext("Subscribe")


@pytest.mark.parametrize("language", i18n.SHIPPED)
def test_every_template_renders_translated(make_site, language: str) -> None:
    cfg = _site(make_site, language)
    recording = Recording(i18n.translations(language))  # type: ignore[arg-type]
    rendered: set[str] = set()
    env = page_environment(cfg)
    i18n.install(env, language, recording)
    text_env = text_environment(cfg)
    i18n.install(text_env, language, recording)
    common = dict(csrf_token="t", cadences=[("daily", "Daily digest"), ("weekly", "Weekly digest")],
                  email="a@example.org", name="Ann", cadence="weekly", error="", action="/x",
                  preferences_url="/p", unsubscribe_url="/u", all_tags=["city"], tags=[],
                  saved=True, done=False, confirm_url="/c", days=30, valid_for="48 hours")
    for template in ("subscribe.html.j2", "confirm.html.j2", "welcome.html.j2",
                     "unsubscribe.html.j2", "preferences.html.j2", "error.html.j2",
                     "404.html.j2", "newsletter_index.html.j2", "confirm_subscription.html.j2"):
        render_page(env, template, cfg, heading="Page not found",
                    message="There is no page at this address.", retry=True, issues=[],
                    **common)
        rendered.add(template)
    render_page(env, "unsubscribe.html.j2", cfg, **{**common, "done": True})
    for template in ("confirm_email.txt.j2", "already_subscribed_email.txt.j2"):
        text_env.get_template(template).render(site=cfg.site, **common)
        rendered.add(template)
    from feedpub.site import plan as site_plan

    articles = [article(n, tags=("city",)) for n in range(1, 4)]
    import feedpub.site.templating as templating

    original = templating.install
    templating.install = lambda env, language, catalog=None: original(env, language, recording)
    try:
        for output in site_plan.plan_pages(articles, cfg):
            output.render()
        rendered |= {"home.html.j2", "article.html.j2", "tag.html.j2", "base.html.j2",
                     "_tags.html.j2"}
        import feedpub.mail.digest as digest

        digest_original = digest.install
        digest.install = lambda env, language, catalog=None: digest_original(env, language,
                                                                             recording)
        try:
            render_digest(cfg, "weekly", articles, NOW)
            render_digest(cfg, "weekly", articles[:1], NOW, public=True)
        finally:
            digest.install = digest_original
        rendered |= {"digest.html.j2", "digest.txt.j2"}
    finally:
        templating.install = original
    shipped = {p.name for p in TEMPLATES.iterdir() if p.name.endswith(".j2")}
    assert shipped - rendered == {"new-article.txt.j2"}  # article source, not reader text
    assert recording.missing == set()


def test_dates_and_text_follow_the_language(make_site) -> None:
    cfg = _site(make_site, "de")
    page = render_digest(cfg, "weekly", [article(1)], NOW).html
    assert '<html lang="de" dir="ltr">' in page
    assert "Im Browser ansehen" in page and "März 2026" in page
    pages = {o.path: o for o in plan_pages([article(1)], cfg)}
    assert "März 2026" in pages["posts/post-1.html"].render().decode()
    fr = _site(make_site, "fr")
    assert "mars 2026" in render_digest(fr, "weekly", [article(1)], NOW).text


@pytest.mark.parametrize("language", ["ar", "he", "ar-EG"])
def test_right_to_left_languages_without_a_catalog(make_site, language: str) -> None:
    cfg = _site(make_site, language)
    page = render_digest(cfg, "weekly", [article(1)], NOW).html
    assert f'<html lang="{language}" dir="rtl">' in page
    assert i18n.text_direction("en") == "ltr"


def test_format_day_is_babel() -> None:
    moment = datetime(2024, 3, 5, 12, tzinfo=UTC)
    assert i18n.format_day(moment, UTC, "en") == "March 5, 2024"
    assert i18n.format_day(moment, UTC, "de") == "5. März 2024"
    assert i18n.format_day(moment, UTC, "xx-unknown") == "March 5, 2024"


class Fixed(gettext.NullTranslations):
    """A catalog with a few texts that need escaping or formatting."""

    TEXTS = {"A & B": "A & B <b>übersetzt</b>", "Sale": "100%% off", "x": "<em>x</em>",
             "%(n)s items": "%(n)s Stück", "odd": "50% off"}

    def gettext(self, message: str) -> str:
        return self.TEXTS.get(message, message)


CONSTANT_CASES = [
    '{{ _("A & B") }}|{{ _("Sale") }}|{{ _("x") }}|{{ _("untranslated <i>") }}',
    '{{ _("x") ~ value }}|{{ (_("x") ~ value) | length }}|{{ _("x") | upper }}',
    '{{ _("%(n)s items", n=value) }}|{{ gettext("x") }}|{{ _("%s") }}',
    '{% autoescape false %}{{ _("x") ~ value }}{% endautoescape %}|{{ _("x") ~ value }}',
    '{% autoescape flag %}{{ _("x") ~ value }}{% endautoescape %}',
    '{% set _ = upper %}{{ _("x") }}',
    '{% macro _(text) %}[{{ text }}]{% endmacro %}{{ _("x") }}',
    '{% for _ in [1] %}{{ value }}{% endfor %}{{ _("A & B") }}',
    '{{ obj._("x") }}|{{ "A & B" | _("x") }}|{{ value is _("x") }}',
]


@pytest.mark.parametrize("autoescape", [True, False])
@pytest.mark.parametrize("source", CONSTANT_CASES)
def test_constant_texts_render_as_the_runtime_call(source: str, autoescape: bool) -> None:
    """A text translated when compiling renders exactly as Jinja2's gettext call."""
    from jinja2 import Environment

    class Obj:
        def _(self, text: str) -> str:
            return f"method {text}"

    context = {"value": "<v>", "flag": not autoescape, "upper": str.upper, "obj": Obj()}
    plain = Environment(autoescape=autoescape, extensions=["jinja2.ext.i18n"])
    plain.install_gettext_translations(Fixed(), newstyle=True)  # type: ignore[attr-defined]
    ours = i18n.install(Environment(autoescape=autoescape), "en", Fixed())
    for env in (plain, ours):
        env.filters["_"] = lambda value, text: f"{value} filtered {text}"
        env.tests["_"] = lambda value, text: value == text
    assert (ours.from_string(source).render(context)
            == plain.from_string(source).render(context))


def test_a_text_that_fails_formatting_still_fails_when_rendered() -> None:
    from jinja2 import Environment

    ours = i18n.install(Environment(autoescape=True), "en", Fixed())
    template = ours.from_string('{{ _("odd") }}')  # "50% off": "% o" needs a number
    with pytest.raises(TypeError):
        template.render()


def test_constant_texts_are_compiled_in() -> None:
    from jinja2 import Environment

    ours = i18n.install(Environment(autoescape=True), "en", Fixed())
    code = ours.compile('{{ _("A & B") }}|{{ _("%(n)s items", n=1) }}', raw=True)
    assert "A & B <b>übersetzt</b>" in code  # a constant of the compiled template
    assert code.count("context.call(") == 1  # only the text with a variable is called
