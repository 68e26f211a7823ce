"""`articles.stats.stat_files`: the stats of many files, half of them taken by a forked child."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import feedpub.articles.stats as stats
from feedpub.articles.stats import MISSING, stat_files


def _files(folder: Path, count: int) -> list[str]:
    paths = []
    for number in range(count):
        path = folder / f"{number:03d}.txt"
        path.write_bytes(b"x" * number)
        os.utime(path, ns=(10**18 + number, 10**18 + number))
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("split", [10, 10**9], ids=["two-processes", "one-process"])
def test_stats_come_back_in_order_with_missing_files_marked(tmp_path, monkeypatch,
                                                            split) -> None:
    monkeypatch.setattr(stats, "_SPLIT", split)
    forks: list[int] = []
    fork = os.fork

    def counted() -> int:
        pid = fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counted)
    paths = _files(tmp_path, 30)
    paths[25] = str(tmp_path / "gone.txt")  # in the child's half
    paths[3] = str(tmp_path / "also-gone.txt")  # in this process's half
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "nowhere")
    paths.append(str(tmp_path / "dangling.txt"))
    got = stat_files(paths)
    expected = [(10**18 + n, n) for n in range(30)]
    expected[25] = expected[3] = MISSING
    assert got == [*expected, MISSING]
    assert len(forks) == (1 if split == 10 else 0)


def test_with_other_threads_running_nothing_is_forked(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(stats, "_SPLIT", 10)

    def fork() -> int:
        raise AssertionError("forked beside another thread")

    monkeypatch.setattr(os, "fork", fork)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        got = stat_files(_files(tmp_path, 20))
    finally:
        stop.set()
        other.join()
    assert got == [(10**18 + n, n) for n in range(20)]


def test_a_child_that_fails_is_made_up_for_here(tmp_path, monkeypatch) -> None:
    """The child's figures are checked: when it sends none, this process stats its half."""
    monkeypatch.setattr(stats, "_SPLIT", 10)
    real = stats._stats

    def failing(paths):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            os._exit(3)  # the child dies before it writes anything
        return real(paths)

    parent = os.getpid()
    monkeypatch.setattr(stats, "_stats", failing)
    assert stat_files(_files(tmp_path, 20)) == [(10**18 + n, n) for n in range(20)]


def test_pending_work_runs_in_a_child_and_its_result_comes_back(monkeypatch) -> None:
    from feedpub.articles.stats import Pending

    parent = os.getpid()
    with Pending(lambda: {"pid": os.getpid(), "value": [1, 2, 3]}) as pending:
        result = pending.result()
    assert result["value"] == [1, 2, 3] and result["pid"] != parent
    assert pending.ready()  # taken: nothing to wait for


def test_pending_work_whose_child_fails_runs_here_and_raises_here() -> None:
    from feedpub.articles.stats import Pending

    parent = os.getpid()

    def work() -> int:
        if os.getpid() != parent:
            os._exit(7)  # the child dies without a result
        return 42

    assert Pending(work).result() == 42

    def broken() -> int:
        raise ValueError("no such folder")

    with pytest.raises(ValueError, match="no such folder"):  # the child's error, raised here
        Pending(broken).result()


def test_a_pending_child_whose_result_is_not_taken_is_stopped(monkeypatch) -> None:
    import time

    from feedpub.articles.stats import Pending

    pending = Pending(lambda: time.sleep(60))
    pid = pending._pid
    assert pid and not pending.ready()
    with pending:
        pass  # an error before the result was taken
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped already


def test_the_article_stats_come_from_a_child_or_from_here(tmp_path, monkeypatch) -> None:
    """A large folder (as the last build listed it) is stat'ed by a child, which answers None
    when the stats are those listed; a small one is stat'ed here when asked."""
    import feedpub.articles.scan as scan
    from feedpub.articles.scan import article_stats, article_stats_later

    _files(tmp_path, 12)
    now = article_stats(tmp_path)
    monkeypatch.setattr(scan, "_APART", 10)
    with article_stats_later(tmp_path, lambda: now, 12) as pending:
        assert pending._pid  # a large folder, and this process may fork: a child stats it
        assert pending.result() is None  # as listed
    (tmp_path / "011.txt").write_text("changed")
    with article_stats_later(tmp_path, lambda: now, 12) as pending:
        assert pending._pid and pending.result() == article_stats(tmp_path) != now
    with article_stats_later(tmp_path, dict, 0) as pending:
        assert not pending._pid and pending.ready()  # a small one: stat'ed here when asked
        assert pending.result() == article_stats(tmp_path)
    monkeypatch.setattr(scan, "may_fork", lambda: False)
    with article_stats_later(tmp_path, dict, 12) as pending:
        assert not pending._pid and pending.ready()
        assert pending.result() == article_stats(tmp_path)
