"""Every setting is checked when a command loads the config: `check`, `build`, `status` and
`run` fail the same way (exit 2, the key and the fix); global options work after the command;
a folder without config.toml is an error that suggests `feedpub init`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import BASE_CONFIG
from feedpub.cli import cli, hoist_global_options
from feedpub.config import DeliveryConfig
from feedpub.delivery.registry import MAILERS
from feedpub.jobs.configcheck import check_config

BAD_SETTINGS = [
    ('[delivery]\nbackend = "smpt"\n', "delivery.backend", "did you mean 'smtp'"),
    ('[schedule]\nweekly = "0 8 * * monday-ish"\n', "schedule.weekly", "five fields"),
    ('[schedule]\ndaily = "61 8 * * *"\n', "schedule.daily", "five fields"),
    ('[digest]\nsubject = "{site}: {titel}"\n', "digest.subject", "{titel}"),
    ('[digest]\nfrom_address = "news at example.org"\n', "digest.from_address", "news@"),
    ('[site]\nemail = "editor@"\n', "site.email", "plain address"),
    ('[delivery]\nbounce_limit = 0\n', "delivery.bounce_limit", "at least 1"),
    ('[web]\nport = 70000\n', "web.port", "TCP port"),
    ('[delivery.smtp]\nca_file = "missing.pem"\n', "delivery.smtp.ca_file", "PEM bundle"),
    ('[store]\nurl = "data/feedpub.db"\n', "store.url", "sqlite:///"),
]
IDS = [key for _, key, _ in BAD_SETTINGS]


def config_with(extra: str) -> str:
    """BASE_CONFIG with one `[section]\nkey = value` setting replacing or adding to it."""
    header, line = extra.strip().split("\n")
    key = line.split("=")[0].strip()
    lines = [x for x in BASE_CONFIG.splitlines()
             if not (x.split("=")[0].strip() == key and "=" in x)]
    if header in lines:
        lines.insert(lines.index(header) + 1, line)
    else:
        lines += [header, line]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("extra", "key", "fix"), BAD_SETTINGS, ids=IDS)
@pytest.mark.parametrize("command", ["check", "build", "status", "run"])
def test_a_bad_setting_fails_every_command_with_exit_2(make_site, extra: str, key: str,
                                                        fix: str, command: str) -> None:
    cfg = make_site({"2024-03-05-a.txt": "date 2024-03-05 A\n\nBody.\n"},
                    config_text=config_with(extra))
    args = ["--config", str(cfg.root / "config.toml"), command]
    if command == "run":
        args += ["--port", "0"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert f"'{key}'" in result.output and fix in result.output, result.output
    assert not (cfg.root / "public").exists()  # nothing was built


def test_status_reads_what_it_can_despite_a_config_error(make_site) -> None:
    cfg = make_site(config_text=config_with('[schedule]\nweekly = "0 8 * * monday-ish"'))
    result = CliRunner().invoke(cli, ["--config", str(cfg.root / "config.toml"), "status"])
    assert result.exit_code == 2
    assert "daemon:       not running" in result.output
    assert "despite the config error" in result.output
    assert "no next weekly run" in result.output and "digest-daily" in result.output


def test_the_checked_backends_are_the_registry(site) -> None:
    """The names the check accepts are exactly the registry's: a new backend needs no list."""
    import dataclasses

    for name in MAILERS:
        check_config(dataclasses.replace(site, delivery=DeliveryConfig(backend=name)))
    assert DeliveryConfig().backend in MAILERS


def test_common_values_take_the_fast_path_and_unusual_ones_the_library(make_site) -> None:
    text = config_with('[schedule]\ndaily = "*/15 6-22 * * mon-fri"')
    text = text.replace('"letters@news.example.org"', '"Zoë@bücher.example"')
    cfg = make_site(config_text=text)
    assert check_config(cfg) is cfg


@pytest.mark.parametrize("args", [
    ["check", "-q"], ["-q", "check"], ["check", "--quiet"], ["check", "--config", "{cfg}", "-q"],
])
def test_global_options_work_after_the_command(make_site, args: list[str]) -> None:
    cfg = make_site({"2024-03-05-a.txt": "date 2024-03-05 A\n\nBody.\n"})
    path = str(cfg.root / "config.toml")
    CliRunner().invoke(cli, ["--config", path, "build"])
    argv = [a.replace("{cfg}", path) for a in args]
    if "--config" not in argv:
        argv = ["--config", path, *argv]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert result.output == ""  # -q: errors only


def test_hoisting_leaves_command_arguments_and_everything_after_double_dash() -> None:
    assert hoist_global_options(["new", "Title", "-v", "--tags", "a"]) == \
        ["-v", "new", "Title", "--tags", "a"]
    assert hoist_global_options(["subscribers", "list", "--config=x.toml"]) == \
        ["--config=x.toml", "subscribers", "list"]
    assert hoist_global_options(["new", "--", "-q"]) == ["new", "--", "-q"]
    assert hoist_global_options(["--config", "c.toml", "build", "-vv"]) == \
        ["--config", "c.toml", "-vv", "build"]


def _feedpub(cwd: Path, *args: str,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "FEEDPUB_CONFIG"}
    return subprocess.run([sys.executable, "-m", "feedpub", *args], cwd=cwd, text=True,
                          capture_output=True, env={**environ, **(env or {})}, timeout=60)


def test_no_config_toml_is_an_error_that_suggests_init(tmp_path: Path) -> None:
    done = _feedpub(tmp_path, "build")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no config.toml" in done.stderr and "feedpub init" in done.stderr
    assert not (tmp_path / "public").exists()


def test_config_is_found_in_a_parent_folder_or_named_by_the_environment(make_site,
                                                                         tmp_path: Path) -> None:
    cfg = make_site({"2024-03-05-a.txt": "date 2024-03-05 A\n\nBody.\n"})
    below = cfg.root / "articles"
    assert _feedpub(below, "build").returncode == 0
    assert (cfg.root / "public" / "feed.xml").exists()
    elsewhere = tmp_path.parent / (tmp_path.name + "-elsewhere")
    elsewhere.mkdir()
    done = _feedpub(elsewhere, "check", env={"FEEDPUB_CONFIG": str(cfg.root / "config.toml")})
    assert done.returncode == 0, done.stdout + done.stderr
