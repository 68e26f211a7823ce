"""Languages: the built-in templates' text (gettext catalogs), dates and writing direction
(Babel), for `[site] language`.

The catalogs ship as `.po` files under `feedpub/locale/<lang>/LC_MESSAGES/feedpub.po` and are
compiled with Babel the first time a language is used in a process (a few milliseconds), so
there is no compiled file to keep in step. A language without a catalog gets the English
text; its dates and direction still come from Babel's CLDR data (Arabic and Hebrew are
right-to-left even without a catalog). Imports only the standard library, Babel and Jinja2.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable, Iterable
from datetime import date, datetime, tzinfo
from functools import lru_cache
from importlib import resources

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from jinja2 import Environment, pass_context, pass_eval_context
from jinja2.ext import Extension
from jinja2.lexer import (
    TOKEN_DOT,
    TOKEN_LPAREN,
    TOKEN_NAME,
    TOKEN_PIPE,
    TOKEN_RPAREN,
    TOKEN_STRING,
    Token,
    TokenStream,
)
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, Markup

DOMAIN = "feedpub"
SHIPPED = ("en", "de", "fr")  # languages whose catalogs are complete (checked by the tests)
_RTL = frozenset({"ar", "he", "iw", "fa", "ur", "yi", "ps", "sd", "ug", "dv", "ckb"})


def primary(language: str) -> str:
    """The language subtag of a BCP 47 tag: "de-CH" -> "de"."""
    return (language or "en").split("-", 1)[0].lower()


@lru_cache(maxsize=32)
def babel_locale(language: str) -> Locale:
    """Babel's locale for a BCP 47 tag, falling back to the language alone, then English."""
    for tag in (language, primary(language)):
        try:
            return Locale.parse(tag or "en", sep="-")
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en")


def text_direction(language: str) -> str:
    """"rtl" for right-to-left scripts (Arabic, Hebrew, ...), else "ltr"."""
    if primary(language) in _RTL:
        return "rtl"
    return "rtl" if babel_locale(language).text_direction == "rtl" else "ltr"


def catalog_path(language: str) -> str:
    return f"locale/{language}/LC_MESSAGES/{DOMAIN}.po"


def compile_catalog(language: str) -> bytes:
    """The shipped catalog of `language` compiled from its .po file (what the .mo file beside
    it holds: `tests/test_i18n.py` checks that they agree)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    source = resources.files("feedpub").joinpath(catalog_path(language))
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    return compiled.getvalue()


@lru_cache(maxsize=32)
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of `language` (or of its primary subtag); English otherwise.
    The .mo file shipped beside the .po is read when there is one: compiling the .po costs
    every process that renders a page about 25 ms."""
    for tag in (language.replace("-", "_"), primary(language)):
        package = resources.files("feedpub")
        if package.joinpath(catalog_path(tag)).is_file():
            compiled = package.joinpath(catalog_path(tag)[:-3] + ".mo")
            data = compiled.read_bytes() if compiled.is_file() else compile_catalog(tag)
            return gettext.GNUTranslations(io.BytesIO(data))
    return gettext.NullTranslations()


def install(env: Environment, language: str,
            catalog: gettext.NullTranslations | None = None) -> Environment:
    """Add Jinja2's i18n extension to `env` with the catalog of `language`."""
    catalog = catalog if catalog is not None else translations(language)
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
    _remember_texts(env)
    env.add_extension(ConstantTexts)
    constant = env.extensions[ConstantTexts.identifier]
    assert isinstance(constant, ConstantTexts)
    if constant.catalog is not None and env.cache is not None:
        env.cache.clear()  # templates compiled with the former catalog
    constant.catalog = catalog
    env.globals["text_direction"] = text_direction(language)
    env.globals["lang"] = language or "en"
    return env


_CONSTANT_FILTER = "_feedpub_constant_text"
# A name just before `_` that makes it something other than a call of the translation
# function: a template that defines its own `_` is compiled as written.
_DEFINES = frozenset({"macro", "call", "import", "set", "for", "with", "block", "filter"})


@pass_eval_context
def _constant_text(eval_ctx: EvalContext, text: str) -> str:
    return Markup(text) if eval_ctx.autoescape else text


def _filter_or_test(tokens: list[Token], index: int) -> bool:
    """Whether the name at `index` is an attribute, a filter or a test, not a variable."""
    before = [(t.type, t.value) for t in tokens[max(0, index - 2):index]]
    return bool(before) and (before[-1][0] in (TOKEN_DOT, TOKEN_PIPE)
                             or before[-1] == (TOKEN_NAME, "is")
                             or before == [(TOKEN_NAME, "is"), (TOKEN_NAME, "not")])


class ConstantTexts(Extension):
    """Translate `_("text")` when a template is compiled, not on every render.

    With a string literal and nothing else between the parentheses, the call's result
    depends only on the catalog (fixed once installed) and on autoescaping: it is
    `Markup(translated) % {}` or `translated % {}`, as Jinja2's new-style gettext returns
    it. The call is replaced by that text through a filter that Jinja2 folds into a
    constant where autoescaping is known when compiling (everywhere but in an
    `{% autoescape %}` block with a variable condition, where the filter runs instead).
    A text whose `%` formatting fails or differs between the two forms, and any template
    where `_` or `gettext` is anything but a called name, are left to the runtime call.
    """

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.catalog: gettext.NullTranslations | None = None
        environment.filters[_CONSTANT_FILTER] = _constant_text

    def filter_stream(self, stream: TokenStream) -> Iterable[Token]:
        tokens = list(stream)
        if self.catalog is None or not self._only_called(tokens):
            return tokens
        out: list[Token] = []
        index = 0
        while index < len(tokens):
            text = self._call_at(tokens, index)
            if text is None:
                out.append(tokens[index])
                index += 1
                continue
            line = tokens[index].lineno
            out.extend((Token(line, TOKEN_LPAREN, "("), Token(line, TOKEN_STRING, text),
                        Token(line, TOKEN_PIPE, "|"), Token(line, TOKEN_NAME, _CONSTANT_FILTER),
                        Token(line, TOKEN_RPAREN, ")")))
            index += 4
        return out

    @staticmethod
    def _only_called(tokens: list[Token]) -> bool:
        for index, token in enumerate(tokens):
            if token.type == TOKEN_NAME and token.value in ("_", "gettext"):
                before = tokens[index - 1] if index else None
                after = tokens[index + 1] if index + 1 < len(tokens) else None
                if after is None or after.type != TOKEN_LPAREN:
                    return False
                if before is not None and before.type == TOKEN_NAME and before.value in _DEFINES:
                    return False
        return True

    def _call_at(self, tokens: list[Token], index: int) -> str | None:
        """The text for `_("...")` starting at `index`, or None to keep what is there."""
        window = tokens[index:index + 4]
        if ([t.type for t in window] != [TOKEN_NAME, TOKEN_LPAREN, TOKEN_STRING, TOKEN_RPAREN]
                or window[0].value != "_" or _filter_or_test(tokens, index)):
            return None
        assert self.catalog is not None
        translated = self.catalog.gettext(window[2].value)
        try:
            plain, marked = translated % {}, Markup(translated) % {}
        except (TypeError, ValueError, KeyError):
            return None
        return plain if type(plain) is str and str(marked) == plain else None


_REMEMBERED = 4096  # distinct texts kept per environment (templates hold a few hundred)


def _remember_texts(env: Environment) -> None:
    """Make `_("text")` and `gettext("text")` look each text up once per environment.

    Jinja2's new-style gettext translates, wraps the text as Markup when autoescaping and
    applies `% variables` on every call, through two context calls. `ConstantTexts` removes
    the calls with a literal; this serves the others (`gettext("text")`, `_(name)`, a
    `{% trans %}` block without variables). The catalog never changes once installed, so
    the result for a string without variables depends only on the string and on
    autoescaping, and is kept. Anything else (variables, a non-string, a `gettext` the
    template defines itself) goes through Jinja2's functions unchanged.
    """
    plain: Callable[..., str] = env.globals["gettext"]  # type: ignore[assignment]
    alias: Callable[..., object] = env.globals["_"]  # type: ignore[assignment]
    known: dict[tuple[str, bool], str] = {}

    @pass_context
    def gettext(__context: Context, __string: str, **variables: object) -> str:
        if variables or type(__string) is not str:
            return plain(__context, __string, **variables)
        key = (__string, __context.eval_ctx.autoescape)
        text = known.get(key)
        if text is None:
            text = plain(__context, __string)
            if len(known) < _REMEMBERED:
                known[key] = text
        return text

    @pass_context
    def translate(__context: Context, *args: object, **kwargs: object) -> object:
        if __context.resolve("gettext") is gettext and len(args) == 1:
            return gettext(__context, args[0], **kwargs)  # type: ignore[arg-type]
        return alias(__context, *args, **kwargs)

    env.globals["gettext"] = gettext
    env.globals["_"] = translate


@lru_cache(maxsize=8192)
def _format_day(day: date, language: str, form: str) -> str:
    return format_date(day, format=form, locale=babel_locale(language))


def format_day(value: datetime, zone: tzinfo, language: str, form: str = "long") -> str:
    """The day of `value` in `zone`, written for `language` ("5 March 2024", "5. März 2024")."""
    return _format_day(value.astimezone(zone).date(), language, form)
