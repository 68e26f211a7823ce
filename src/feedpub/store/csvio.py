"""Subscriber CSV import and export.

Import finds the header itself (a row naming an `email` column; otherwise column 1 is the
address and column 2 the name), reports every bad row by line number, adds the good ones in
one transaction and skips addresses already present, so importing a file twice changes
nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ..errors import SubscriberError
from . import CADENCES, Store, _clean_name, normalize_email, normalize_tags, schema
from .dialect import insert_ignore

EXPORT_FIELDS = ("email", "name", "status", "created", "confirmed", "cadence", "tags")


@dataclass(frozen=True)
class CsvRow:
    line: int
    email: str
    name: str | None
    cadence: str | None
    tags: tuple[str, ...]


@dataclass(frozen=True)
class ImportReport:
    added: int
    existing: int
    errors: tuple[str, ...]  # "file:line: reason (fix)"


def parse_csv(text: str, source: str) -> tuple[list[CsvRow], list[str]]:
    """Good rows and error messages (pure)."""
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows: list[CsvRow] = []
    errors: list[str] = []
    columns = {"email": 0, "name": 1}
    seen: set[str] = set()
    for index, cells in enumerate(reader):
        line = reader.line_num
        cells = [c.strip() for c in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if index == 0 and "email" in [c.lower() for c in cells]:
            columns = {c.lower(): i for i, c in enumerate(cells) if c}
            continue
        try:
            row = _row(cells, columns, line)
        except SubscriberError as exc:
            errors.append(f"{source}:{line}: {exc}")
            continue
        if row.email in seen:
            continue  # the same address twice in one file collapses into one
        seen.add(row.email)
        rows.append(row)
    return rows, errors


def _cell(cells: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return cells[index] if index is not None and index < len(cells) else ""


def _row(cells: list[str], columns: dict[str, int], line: int) -> CsvRow:
    address = _cell(cells, columns, "email")
    if not address:
        raise SubscriberError("no email address in this row (put the address in the "
                              "'email' column)")
    cadence = _cell(cells, columns, "cadence").lower() or None
    if cadence is not None and cadence not in CADENCES:
        raise SubscriberError(f"cadence {cadence!r} is not 'daily' or 'weekly' (or leave empty)")
    return CsvRow(line=line, email=normalize_email(address),
                  name=_clean_name(_cell(cells, columns, "name")) or None, cadence=cadence,
                  tags=normalize_tags(_cell(cells, columns, "tags").replace(";", ",")))


def import_csv(store: Store, path: Path, *, status: str = "active") -> ImportReport:
    """Add the good rows of a CSV file; report the bad ones. Existing addresses are kept."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriberError(f"{path}: cannot read the CSV file: {exc} "
                              "(give a UTF-8 CSV file)") from exc
    rows, errors = parse_csv(text, str(path))
    now = datetime.now(UTC)
    added = 0
    with store.writer.begin() as conn:
        for row in rows:
            result = conn.execute(insert_ignore(store.engine, schema.subscribers, {
                "email": row.email, "name": row.name, "status": status, "created": now,
                "confirmed": now if status == "active" else None, "cadence": row.cadence,
                "tags": ",".join(row.tags), "bounces": 0}, index=["email"]))
            added += result.rowcount
    return ImportReport(added=added, existing=len(rows) - added, errors=tuple(errors))


def export_rows(store: Store, status: str | None = None) -> Iterator[dict[str, str]]:
    for sub in store.iter_subscribers(status):
        yield {
            "email": sub.email, "name": sub.name or "", "status": sub.status,
            "created": sub.created.isoformat(),
            "confirmed": sub.confirmed.isoformat() if sub.confirmed else "",
            "cadence": sub.cadence or "", "tags": ",".join(sub.tags),
        }


def export_csv(store: Store, out: TextIO, status: str | None = None) -> int:
    """Write all subscribers as CSV (with a header); returns the number of rows."""
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in export_rows(store, status):
        writer.writerow(row)
        count += 1
    return count
