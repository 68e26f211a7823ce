"""The forked build workers, the atomic writer, and a parallel build against a serial one."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import feedparser
import pytest

from feedpub.errors import ArticleError
from feedpub.fsutil import atomic_open, atomic_write, current_umask
from feedpub.jobs import publish, stages, workers
from feedpub.jobs.workers import WorkerError, can_fork, map_chunks, split_by_cost

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def single_thread() -> None:
    """Wait for threads left by earlier tests (servers shutting down): forking needs one."""
    deadline = time.monotonic() + 10
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert can_fork(), [t.name for t in threading.enumerate()]


def test_chunks_are_shared_among_processes_and_results_keep_their_order(
        single_thread) -> None:
    def work(index: int) -> tuple[int, int]:
        time.sleep(0.01)  # long enough for every worker to take some
        return index * index, os.getpid()

    seen: list[int] = []
    results = map_chunks(work, 40, 3, seen.append)
    assert [value for value, _ in results] == [i * i for i in range(40)]
    pids = {pid for _, pid in results}
    assert os.getpid() in pids and len(pids) == 3
    assert seen and seen == sorted(seen) and max(seen) <= 40


def test_an_error_in_a_child_is_raised_here_with_its_message(single_thread) -> None:
    def work(index: int) -> int:
        if os.getpid() != home:
            raise ArticleError("b.txt", "the file is empty", line=1, fix="write something")
        time.sleep(0.05)
        return index

    home = os.getpid()
    with pytest.raises(ArticleError) as caught:
        map_chunks(work, 10, 2)
    assert caught.value.source == "b.txt" and "the file is empty" in str(caught.value)


def _in_child(home: int, action: Callable[[], object]) -> Callable[[int], int]:
    def work(index: int) -> int:
        if os.getpid() != home:
            action()
        time.sleep(0.05)
        return index
    return work


def test_a_child_that_dies_is_reported_and_reaped(single_thread) -> None:
    home = os.getpid()
    with pytest.raises(WorkerError, match="killed by signal 9"):
        map_chunks(_in_child(home, lambda: os.kill(os.getpid(), signal.SIGKILL)), 10, 2)
    with pytest.raises(WorkerError, match="exited with status 3"):
        map_chunks(_in_child(home, lambda: os._exit(3)), 10, 2)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left behind


def test_an_exception_that_cannot_be_pickled_arrives_as_its_text(single_thread) -> None:
    class Local(Exception):  # a local class cannot be pickled
        pass

    def bad() -> None:
        raise Local("went wrong")

    with pytest.raises(WorkerError, match="Local: went wrong"):
        map_chunks(_in_child(os.getpid(), bad), 10, 2)


def test_an_error_here_stops_the_children(single_thread) -> None:
    home = os.getpid()

    def work(index: int) -> int:
        if os.getpid() == home:
            raise ValueError("parent chunk failed")
        time.sleep(30)
        return index

    started = time.monotonic()
    with pytest.raises(ValueError, match="parent chunk failed"):
        map_chunks(work, 4, 2)
    assert time.monotonic() - started < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_with_other_threads_running_every_chunk_runs_here() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not can_fork()
        assert map_chunks(lambda i: (i, os.getpid()), 3, 2) == [(i, os.getpid())
                                                                  for i in range(3)]
    finally:
        stop.set()
        thread.join()


def test_chunks_are_handed_out_in_the_order_given(single_thread, tmp_path: Path) -> None:
    """In one process exactly in that order; in several, the first two chunks taken are
    the first two of the order. The results keep the chunks' own order either way."""
    order = [5, 0, 3, 1, 4, 2]
    calls: list[int] = []
    assert map_chunks(lambda i: calls.append(i) or i * 10, 6, 1, order=order) == [
        0, 10, 20, 30, 40, 50]
    assert calls == order

    log = tmp_path / "taken"

    def work(index: int) -> int:
        with open(log, "a", encoding="utf-8") as handle:  # one short append: not torn
            handle.write(f"{index}\n")
        time.sleep(0.05)
        return index * 10

    assert map_chunks(work, 6, 2, order=order) == [0, 10, 20, 30, 40, 50]
    taken = [int(line) for line in log.read_text(encoding="utf-8").split()]
    assert sorted(taken) == list(range(6)) and set(taken[:2]) == {5, 0}


def test_the_costliest_chunks_are_rendered_first(make_site, monkeypatch,
                                                 single_thread) -> None:
    """A large site's sitemap and tag pages cost far more than an article page, and the
    chunks are handed out costliest first, so no process is left with a long one at the end
    while the other waits. Outputs about the same articles share chunks."""
    articles = {f"2024-{1 + day // 28:02d}-{1 + day % 28:02d}-e{day}.txt":
                f"date 2024-{1 + day // 28:02d}-{1 + day % 28:02d} Entry {day}\n\n"
                f"Tags: t{day % 2}\n\nBody {day}.\n" for day in range(300)}
    cfg = make_site(articles)
    outputs = {output.path: output for output in publish.plan_outputs(
        publish.published_articles(cfg), cfg)}
    post = outputs["posts/2024-01-01-e0.html"].cost
    assert outputs["sitemap.xml"].cost > 10 * post and outputs["tags/t0.html"].cost > 10 * post

    orders: list[list[int] | None] = []
    results: list[list[list[tuple[str, str, int]]]] = []

    def spy(work, count, workers, done=None, first=None,  # type: ignore[no-untyped-def]
            receive=None, order=None):
        orders.append(order)
        results.append(map_chunks(work, count, workers, done, first, receive, order))
        return results[-1]

    monkeypatch.setattr(stages, "map_chunks", spy)
    monkeypatch.setattr(stages, "_PARALLEL_RENDER", 1)
    publish.build_feeds(cfg, workers=2)
    order, chunks = orders[-1], results[-1]  # the render's
    assert order is not None and sorted(order) == list(range(len(chunks)))
    weights = [sum(outputs[path].cost for path, _, _ in chunk) for chunk in chunks]
    assert [weights[i] for i in order] == sorted(weights, reverse=True)
    # The oldest archive page (the 50 oldest articles) is written beside the page of the
    # newest of them, not among the feeds before every page.
    where = {path: n for n, chunk in enumerate(chunks) for path, _, _ in chunk}
    assert abs(where["archive/1.xml"] - where["posts/2024-02-22-e49.html"]) <= 3
    assert where["archive/1.xml"] > where["posts/2024-11-20-e299.html"] + 5


def test_split_by_cost_gives_consecutive_ranges_of_similar_cost() -> None:
    costs = [52] * 600 + [3] * 10000
    ranges = split_by_cost(costs, 2)
    assert [i for r in ranges for i in r] == list(range(len(costs)))
    totals = [sum(costs[i] for i in r) for r in ranges]
    assert len(ranges) == 2 and abs(totals[0] - totals[1]) <= 2 * 52
    assert split_by_cost([5, 5], 4) == [range(0, 1), range(1, 2)]
    assert split_by_cost([], 2) == [] and split_by_cost([1, 2, 3], 1) == [range(3)]


def _spy_on_map_chunks(monkeypatch: pytest.MonkeyPatch,
                       orders: list[list[int] | None] | None = None) -> list[tuple[int, int]]:
    """(chunks, workers) of every map_chunks call the build makes from now on (and the
    order of its chunks in `orders`)."""
    calls: list[tuple[int, int]] = []

    def spy(work, count, workers, done=None, first=None,  # type: ignore[no-untyped-def]
            receive=None, order=None):
        calls.append((count, workers))
        if orders is not None:
            orders.append(None if order is None else list(order))
        return map_chunks(work, count, workers, done, first, receive, order)

    monkeypatch.setattr(stages, "map_chunks", spy)
    return calls


def _snapshot(public: Path) -> dict[str, bytes]:
    return {p.relative_to(public).as_posix(): p.read_bytes()
            for p in sorted(public.rglob("*")) if p.is_file()}


def test_a_parallel_build_writes_the_same_bytes_as_one_process(make_site, monkeypatch,
                                                                single_thread) -> None:
    articles = {f"2024-01-{day:02d}-entry.txt": f"date 2024-01-{day:02d} Entry {day}\n\n"
                f"Tags: t{day % 3}\n\nBody of entry {day} & more.\n" for day in range(1, 29)}
    articles["2024-02-01-bad.txt"] = "no header here\n"
    cfg = make_site(articles, extra="[feeds]\narchive_size = 5\n")
    shutil.copytree(ROOT / "articles", cfg.articles_dir, dirs_exist_ok=True)
    calls = _spy_on_map_chunks(monkeypatch)
    monkeypatch.setattr(stages, "_PARSE_CHUNK", 4)
    monkeypatch.setattr(stages, "_PARALLEL_PARSE", 1)
    monkeypatch.setattr(stages, "_PARALLEL_RENDER", 1)
    parallel = publish.build_feeds(cfg, workers=2)
    assert [workers for _, workers in calls] == [2, 2]  # parsing and rendering were both split
    files = _snapshot(cfg.public_dir)
    assert [str(e) for e in parallel.skipped] == [
        str(e) for e in publish.load_site(cfg).errors]
    assert "2024-02-01-bad.txt" in str(parallel.skipped[0])
    assert feedparser.parse(files["feed.xml"]).bozo == 0

    shutil.rmtree(cfg.public_dir)
    shutil.rmtree(cfg.data_dir)
    serial = publish.build_feeds(cfg, workers=1)
    assert _snapshot(cfg.public_dir) == files
    assert sorted(serial.written) == sorted(parallel.written)
    assert [str(e) for e in serial.skipped] == [str(e) for e in parallel.skipped]
    assert publish.build_feeds(cfg, workers=2).up_to_date


def test_atomic_write_sets_the_exact_mode_and_makes_folders(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        target = tmp_path / "a" / "b" / "feed.xml"
        atomic_write(target, b"<rss/>", fsync=False)
        atomic_write(tmp_path / "key", b"secret", mode=0o600)
    finally:
        os.umask(old)
    assert target.read_bytes() == b"<rss/>"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "key").stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["feed.xml"]


def test_a_cold_build_writes_every_file_with_the_exact_mode_whatever_the_umask(
        make_site, single_thread) -> None:
    """Files written into a new folder are created with their mode when the umask leaves
    it whole, and set to it after when not."""
    cfg = make_site({f"2024-01-0{day}-e.txt": f"date 2024-01-0{day} E{day}\n\nBody.\n"
                     for day in range(1, 4)})
    for mask in (0o022, 0o077, 0o000):
        old = os.umask(mask)
        try:
            assert current_umask() == mask
            shutil.rmtree(cfg.public_dir, ignore_errors=True)
            shutil.rmtree(cfg.data_dir, ignore_errors=True)
            assert publish.build_feeds(cfg, workers=1).written
        finally:
            os.umask(old)
        modes = {stat.S_IMODE(path.stat().st_mode)
                 for path in cfg.public_dir.rglob("*") if path.is_file()}
        assert modes == {0o644}, (oct(mask), modes)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "feed.xml"
    atomic_write(target, b"old")
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write(b"half")
        raise RuntimeError("disk full")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["feed.xml"]


def test_a_temporary_name_left_by_a_crash_does_not_block_a_write(tmp_path: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.setattr("feedpub.fsutil._serial", iter([7]))
    stale = tmp_path / f".feed.xml.{os.getpid()}-7.tmp"
    stale.write_bytes(b"left over")
    atomic_write(tmp_path / "feed.xml", b"new", fsync=False)
    assert (tmp_path / "feed.xml").read_bytes() == b"new"
    assert stale.read_bytes() == b"left over"
    assert len(list(tmp_path.iterdir())) == 2


def test_workers_module_reports_cores() -> None:
    assert workers.available_cores() >= 1


def test_first_runs_once_here_while_the_children_work(single_thread) -> None:
    calls: list[int] = []
    order: list[str] = []

    def work(index: int) -> int:
        if os.getpid() == home:
            order.append("chunk")
        time.sleep(0.01)
        return index

    def first() -> None:
        calls.append(os.getpid())
        order.append("first")

    home = os.getpid()
    assert map_chunks(work, 20, 2, first=first) == list(range(20))
    assert calls == [home] and order[0] == "first"
    calls.clear()
    assert map_chunks(work, 0, 2, first=first) == [] and calls == [home]


def test_the_children_results_are_received_here_while_this_process_works(
        single_thread) -> None:
    home = os.getpid()
    received: list[tuple[int, int, int]] = []  # (result, pid that made it, own chunks done)
    mine: list[int] = []

    def work(index: int) -> tuple[int, int]:
        if os.getpid() == home:
            mine.append(index)
        time.sleep(0.02)
        return index, os.getpid()

    def receive(result: tuple[int, int]) -> tuple[int, int]:
        assert os.getpid() == home
        received.append((*result, len(mine)))
        return result[0] * 10, result[1]

    results = map_chunks(work, 30, 2, receive=receive)
    children = [index for index, pid, _ in received]
    assert children and all(pid != home for _, pid, _ in received)
    assert sorted(children + mine) == list(range(30))  # each result once, by one process
    assert [value for value, _ in results] == [
        i * 10 if i in children else i for i in range(30)]
    # Received between this process's own chunks, not all once they were done.
    assert received[0][2] < len(mine)


def test_a_large_site_is_parsed_in_at_most_max_chunks(make_site, monkeypatch) -> None:
    cfg = make_site({f"2024-01-{day:02d}-e.txt": f"date 2024-01-{day:02d} Entry {day}\n\nText.\n"
                     for day in range(1, 11)})
    calls = _spy_on_map_chunks(monkeypatch)
    monkeypatch.setattr(stages, "MAX_CHUNKS", 3)
    monkeypatch.setattr(stages, "_PARSE_CHUNK", 1)
    report = publish.build_feeds(cfg, workers=1)
    assert report.articles == 10 and calls[0][0] == 3  # chunks of 4, 4 and 2 files
    with pytest.raises(ValueError, match="at most"):
        map_chunks(lambda i: i, workers.MAX_CHUNKS + 1, 2)
