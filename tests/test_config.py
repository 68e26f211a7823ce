"""config.toml: defaults, unknown keys with suggestions, wrong types, the shipped file."""

from __future__ import annotations

import dataclasses
import itertools
import string
from pathlib import Path

import pytest

from feedpub.config import Config, language_tag_is_valid, load_config, parse_config
from feedpub.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _all_keys(obj: object, prefix: str = "") -> dict[str, object]:
    keys: dict[str, object] = {}
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        if f.name == "root" or "deprecated" in f.metadata:  # read, no longer documented
            continue
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            keys.update(_all_keys(value, name + "."))
        else:
            keys[name] = value
    return keys


def test_shipped_config_lists_every_key_with_its_default_and_a_comment() -> None:
    shipped = load_config(ROOT / "config.toml")
    defaults = Config(root=ROOT)
    assert _all_keys(shipped) == _all_keys(defaults)
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    for key in _all_keys(defaults):
        leaf = key.rsplit(".", 1)[-1]
        lines = [line for line in text.splitlines() if line.startswith(f"{leaf} ")]
        assert lines, f"config.toml lacks {key}"
        assert all("#" in line for line in lines), f"{key} has no comment"


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'feeds.sise'; did you mean 'feeds.size'"):
        parse_config("[feeds]\nsise = 3\n", tmp_path)
    with pytest.raises(ConfigError, match=r"unknown key 'sitee'; did you mean 'site'"):
        parse_config("[sitee]\ntitle = 'x'\n", tmp_path)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("title = 'x'\n", "unknown key 'title'; did you mean 'site.title'?"),
        ("[site]\nsize = 3\n", "unknown key 'site.size'; did you mean 'feeds.size'?"),
        ("[feeds]\ntimezone = 'UTC'\n",
         "unknown key 'feeds.timezone'; did you mean 'site.timezone'?"),
        ("[site]\nport = 8000\n",
         "unknown key 'site.port'; did you mean 'delivery.smtp.port' or 'web.port'?"),
        ("[delivery]\nhost = 'mx'\n",
         "unknown key 'delivery.host'; did you mean 'delivery.smtp.host' or 'web.host'?"),
    ],
)
def test_a_key_in_the_wrong_section_names_the_right_one(tmp_path: Path, text: str,
                                                        words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path)
    assert words in str(info.value)


def test_the_two_letter_fast_path_agrees_with_langcodes() -> None:
    import langcodes

    for first, second in itertools.product(string.ascii_lowercase, repeat=2):
        tag = first + second
        assert language_tag_is_valid(tag) == langcodes.tag_is_valid(tag), tag


@pytest.mark.parametrize("language", ["en", "de-CH", "pt-BR", "zh-Hant-TW", "EN", ""])
def test_language_codes_are_accepted(tmp_path: Path, language: str) -> None:
    assert parse_config(f"[site]\nlanguage = '{language}'\n", tmp_path).site.language == language


def test_websub_hub_is_kept_without_surrounding_spaces(tmp_path: Path) -> None:
    cfg = parse_config("[feeds]\nwebsub_hub = ' https://hub.example.org/ '\n", tmp_path)
    assert cfg.feeds.websub_hub == "https://hub.example.org/"


@pytest.mark.parametrize(
    "url", ["https://hub.example.org/", "http://127.0.0.1:8081/hub", "https://hub.example.org"])
def test_websub_hub_accepts_absolute_urls(tmp_path: Path, url: str) -> None:
    assert parse_config(f"[feeds]\nwebsub_hub = '{url}'\n", tmp_path).feeds.websub_hub == url


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[feeds]\nsize = 'twenty'\n", "'feeds.size' must be a whole number"),
        ("[feeds]\ntag_feeds = 1\n", "'feeds.tag_feeds' must be a bool"),
        ("[delivery.smtp]\nport = true\n", "'delivery.smtp.port' must be a whole number"),
        ("site = 3\n", "[site] must be a table"),
        ("[site]\ntimezone = 'Mars/Olympus'\n", "'site.timezone'"),
        ("[site]\nbase_url = 'example.org'\n", "'site.base_url'"),
        ("[site]\ndefault_time = 'noon'\n", "'site.default_time'"),
        ("[delivery.smtp]\nsecurity = 'ssl'\n", "'delivery.smtp.security'"),
        ("[feeds\n", "not valid TOML"),
        ("[site]\nlanguage = 'English'\n", "'site.language' = 'English' is not a language code"),
        ("[site]\nlanguage = 'en_US'\n", "write an ISO 639 code"),
        ("[site]\nlanguage = 'xx'\n", "'site.language'"),
        ("[feeds]\nwebsub_hub = 'hub.example/pub'\n",
         "'feeds.websub_hub' = 'hub.example/pub' must be an absolute http(s) URL"),
        ("[feeds]\nwebsub_hub = 'ftp://hub.example.org/'\n", "'feeds.websub_hub'"),
        ("[feeds]\nwebsub_hub = 'https://hub example.org/'\n", "percent-encode"),
        ("[site]\nbase_url = '/news/'\n", "'site.base_url' = '/news/' must be an absolute"),
        ("[site]\nbase_url = 'https://news.example.org:port/'\n", "is not a valid URL"),
        ("[site]\nbase_url = 'https://news.example.org/?p=/'\n",
         "must not have a query or fragment"),
        ("[site]\nbase_url = 'https://news.example.org/a b/'\n", "percent-encode"),
        ("[site]\nbase_url = 'https://news.example.org'\n", "must end with '/'"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path, "site/config.toml")
    assert words in str(info.value)
    assert str(info.value).startswith("site/config.toml: ")


def test_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    cfg = parse_config("[paths]\npublic = 'out'\n", tmp_path)
    assert cfg.public_dir == tmp_path / "out"
    assert cfg.database_url == f"sqlite:///{tmp_path.resolve()}/data/feedpub.db"
    assert cfg.delivery.smtp.timeout == 30.0


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_delivery_durations_accept_units_and_name_the_key_when_wrong(tmp_path: Path) -> None:
    cfg = parse_config('[delivery]\nretry_first = "90s"\nretry_max_interval = "1.5h"\n'
                       'retry_give_up = "4d"\nqueue_interval = 30\n', tmp_path)
    d = cfg.delivery
    assert (d.retry_first, d.retry_max_interval, d.retry_give_up, d.queue_interval) == (
        90, 5400, 4 * 86400, 30)
    defaults = Config().delivery
    assert (defaults.retry_first, defaults.retry_max_interval, defaults.retry_give_up,
            defaults.queue_interval) == (300, 3600, 345600, 60)
    with pytest.raises(ConfigError, match=r"'delivery.retry_first' = '5 minutes' is not a "
                                          r"duration.*\"5m\""):
        parse_config('[delivery]\nretry_first = "5 minutes"\n', tmp_path)
    with pytest.raises(ConfigError, match=r"'delivery.queue_interval' = 0 must be longer"):
        parse_config("[delivery]\nqueue_interval = 0\n", tmp_path)
    with pytest.raises(ConfigError, match=r"'delivery.retry_max_interval' .* shorter than "
                                          r"'delivery.retry_first'"):
        parse_config('[delivery]\nretry_first = "2h"\n', tmp_path)


def test_former_retry_keys_load_but_are_ignored_with_a_warning(tmp_path: Path, caplog) -> None:
    caplog.set_level("WARNING", logger="feedpub.config")
    cfg = parse_config("[delivery]\nmax_attempts = 5\nretry_base = 2.0\n", tmp_path)
    assert (cfg.delivery.retry_first, cfg.delivery.retry_give_up) == (300, 4 * 86400)
    assert ("'delivery.retry_base' is deprecated and ignored: write 'delivery.retry_first'"
            in caplog.text)
    assert ("'delivery.max_attempts' is deprecated and ignored: write "
            "'delivery.retry_give_up'" in caplog.text)
