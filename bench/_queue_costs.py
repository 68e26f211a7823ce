"""Per-message costs of the delivery queue, measured on a copy of a benchmark site's store.

* the status check each sending thread makes right before a message (`LiveStatus.check`:
  one primary-key lookup of the row and its subscriber, in its own read transaction);
* recording a message as sent (`Outbox.mark_sent`, one commit) with the store's
  `synchronous = FULL` against `NORMAL`, the setting before durable commits.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _reset(engine: Any) -> list[int]:
    from feedpub.store import schema
    from feedpub.store.dialect import writer

    with writer(engine).begin() as conn:
        conn.execute(schema.outbox.update().values(status="pending", reply=None, sent_at=None))
        return list(conn.execute(schema.outbox.select().with_only_columns(
            schema.outbox.c.id).order_by(schema.outbox.c.id)).scalars())


def check_cost(db: Path, work: Path, samples: int = 3) -> float:
    """Median microseconds of one live status check, over every row of the issue."""
    sys.path.insert(0, str(ROOT / "src"))
    from feedpub.store.dialect import create_engine
    from feedpub.store.hotpath import LiveStatus

    copy = work / "costs.db"
    shutil.copy(db, copy)
    engine = create_engine(f"sqlite:///{copy}")
    ids = _reset(engine)
    runs = []
    with LiveStatus(engine) as live:
        for _ in range(samples):
            start = time.perf_counter()
            for row_id in ids:
                live.check(row_id)
            runs.append((time.perf_counter() - start) / len(ids) * 1e6)
    engine.dispose()
    return statistics.median(runs)


def commit_cost(db: Path, work: Path, synchronous: str, rows: int = 2000) -> float:
    """Median microseconds of one `mark_sent` commit with the given synchronous setting."""
    sys.path.insert(0, str(ROOT / "src"))
    import sqlalchemy as sa

    from feedpub.store import Store
    from feedpub.store.dialect import create_engine
    from feedpub.store.outbox import Outbox

    copy = work / f"commit-{synchronous.lower()}.db"
    shutil.copy(db, copy)
    engine = create_engine(f"sqlite:///{copy}")

    @sa.event.listens_for(engine, "connect")
    def _setting(dbapi_connection: Any, _record: Any) -> None:  # after the store's own
        dbapi_connection.execute(f"PRAGMA synchronous = {synchronous}")

    ids = _reset(engine)[:rows]
    outbox = Outbox(Store(engine))
    now = datetime.now(UTC)
    times = []
    for row_id in ids:
        start = time.perf_counter()
        outbox.mark_sent(row_id, "250 2.0.0 queued", now)
        times.append(time.perf_counter() - start)
    engine.dispose()
    return statistics.median(times) * 1e6
