"""The house by wing: the import contracts in pyproject.toml hold, and they catch a back-import.

The contracts are checked with import-linter (`lint-imports`), which reads every import,
including those inside functions. The tests below run it on the real package, then on copies
with one forbidden import added, to show each kind of break is caught.
"""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "feedpub"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(src: Path, config: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"{LINT_IMPORTS} is missing: install the test extras "
                    "(pip install -e '.[test]')")
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config", str(config)],
                          capture_output=True, text=True, env=env, cwd=src, timeout=120)


def test_the_import_contracts_hold() -> None:
    done = _lint(ROOT / "src", ROOT / "pyproject.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


# (file to change, line to add, the contract that must break)
BACK_IMPORTS = [
    ("articles/model.py", "from ..jobs import publish", "Layers"),
    ("feeds/plan.py", "from ..delivery import base", "Publishing (articles, feeds, site)"),
    ("mail/digest.py", "from ..site import pages", "Mailing (mail, delivery, store)"),
    ("jobs/publish.py", "from ..web import app", "Layers"),
    ("store/outbox.py", "from ..delivery import sender", "Layers"),
    ("articles/model.py", "import sqlalchemy", "Articles know no database"),
    ("articles/model.py", "from . import scan", "No import circles"),
    ("delivery/base.py", "from . import sender", "No import circles"),
]


@pytest.mark.parametrize(("module", "line", "contract"), BACK_IMPORTS,
                         ids=[f"{m}:{line}" for m, line, _ in BACK_IMPORTS])
def test_a_back_import_breaks_a_contract(tmp_path: Path, module: str, line: str,
                                         contract: str) -> None:
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "feedpub", ignore=shutil.ignore_patterns("__pycache__"))
    target = src / "feedpub" / module
    # Inside a function, as lazy imports are written: the contracts see those too.
    target.write_text(target.read_text(encoding="utf-8")
                      + f"\n\ndef _added() -> None:\n    {line}  # noqa\n", encoding="utf-8")
    done = _lint(src, ROOT / "pyproject.toml")
    assert done.returncode != 0, done.stdout
    broken = done.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, done.stdout


def _packages() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE)


@pytest.mark.parametrize("init", _packages(), ids=lambda p: p.parent.name)
def test_every_package_says_what_it_does_and_what_it_never_imports(init: Path) -> None:
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert len(doc.splitlines()[0]) > 20, f"{init}: the docstring should say what the wing does"
    assert "Never imports:" in doc or "nothing imports it" in doc, (
        f"{init}: the docstring should say what the package never imports")


def test_every_wing_is_in_the_layers_contract() -> None:
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    layers = config.split('type = "layers"', 1)[1].split("[[tool.importlinter", 1)[0]
    for init in _packages():
        if init.parent.parent == PACKAGE:
            assert f"feedpub.{init.parent.name}" in layers, f"{init.parent.name} has no layer"
    for module in PACKAGE.glob("*.py"):
        if module.stem not in {"__init__", "__main__"}:
            assert f"feedpub.{module.stem}" in layers, f"{module.name} has no layer"


def test_documented_feed_names_keep_working_without_loading_feedgen() -> None:
    feeds = importlib.import_module("feedpub.feeds")
    writers = importlib.import_module("feedpub.feeds.writers")
    plan = importlib.import_module("feedpub.feeds.plan")
    assert feeds.plan_feeds is writers.plan_feeds
    assert feeds.FEED_CONTENT_TYPES is plan.FEED_CONTENT_TYPES
    assert feeds.tag_slugs is plan.tag_slugs
    with pytest.raises(AttributeError):
        _ = feeds.no_such_name
    code = ("import sys, feedpub.feeds, feedpub.web.static\n"
            "print('feedgen' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
