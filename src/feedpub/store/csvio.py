"""Subscriber CSV import and export.

Import finds the header itself (the first row that is not blank or a `#` comment, if it names
an address column such as `email` or `Email Address` and holds no address; otherwise column 1
is the address and column 2 the name), reports every bad row by line number, adds the good ones in
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
from . import (
    CADENCES,
    Store,
    _clean_name,
    address_key,
    new_nonce,
    normalize_email,
    normalize_tags,
    schema,
)
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


# Header names (lower-case) accepted for each column; Mailchimp-style exports included.
ALIASES = {
    "email": ("email", "e-mail", "email address", "e-mail address", "mail"),
    "name": ("name", "full name"),
    "first_name": ("first name", "firstname", "given name"),
    "last_name": ("last name", "lastname", "surname", "family name"),
    "cadence": ("cadence",),
    "tags": ("tags",),
}
DEFAULT_COLUMNS = {"email": 0, "name": 1}


def _skipped(cells: list[str]) -> bool:
    """Blank and `#` comment rows carry no data."""
    return not any(cells) or cells[0].startswith("#")


def _parses_as_address(cell: str) -> bool:
    if "@" not in cell:
        return False
    try:
        normalize_email(cell)
    except SubscriberError:
        return False
    return True


def header_columns(cells: list[str]) -> dict[str, int] | None:
    """Column positions if `cells` is a header row: it names an address column and no cell
    is an address. None: a data row."""
    if any(_parses_as_address(c) for c in cells):
        return None
    names = [" ".join(cell.lower().replace("_", " ").split()) for cell in cells]
    columns: dict[str, int] = {}
    for column, aliases in ALIASES.items():
        for alias in aliases:  # the first alias present wins: `email` before `e-mail`
            if alias in names:
                columns[column] = names.index(alias)
                break
    return columns if "email" in columns else None


def _dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    """Sniffed from the data lines (blank and comment lines would mislead the sniffer)."""
    lines = [line for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    try:
        return csv.Sniffer().sniff("\n".join(lines)[:4096], ",;\t")
    except csv.Error:
        return csv.excel


def parse_csv(text: str, source: str) -> tuple[list[CsvRow], list[str]]:
    """Good rows and error messages (pure). Line numbers are the file's own."""
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text), _dialect(text))
    rows: list[CsvRow] = []
    errors: list[str] = []
    columns = DEFAULT_COLUMNS
    first = True
    seen: set[str] = set()
    for cells in reader:
        line = reader.line_num
        cells = [c.strip() for c in cells]
        if _skipped(cells):
            continue
        if first:  # the first data-bearing row may be the header
            first = False
            found = header_columns(cells)
            if found is not None:
                columns = found
                continue
        try:
            row = _row(cells, columns, line)
        except SubscriberError as exc:
            errors.append(f"{source}:{line}: {exc}")
            continue
        if address_key(row.email) in seen:
            continue  # the same address twice in one file (in any case) collapses into one
        seen.add(address_key(row.email))
        rows.append(row)
    return rows, errors


def _cell(cells: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return cells[index] if index is not None and index < len(cells) else ""


def _name(cells: list[str], columns: dict[str, int]) -> str:
    if "name" in columns:
        return _cell(cells, columns, "name")
    return " ".join(part for part in (_cell(cells, columns, "first_name"),
                                      _cell(cells, columns, "last_name")) if part)


def _row(cells: list[str], columns: dict[str, int], line: int) -> CsvRow:
    address = _cell(cells, columns, "email")
    if not address:
        raise SubscriberError("no email address in this row (put the address in the "
                              "'email' column)")
    cadence = _cell(cells, columns, "cadence").lower() or None
    if cadence is not None and cadence not in CADENCES:
        raise SubscriberError(f"cadence {cadence!r} is not 'daily' or 'weekly' (or leave empty)")
    return CsvRow(line=line, email=normalize_email(address),
                  name=_clean_name(_name(cells, columns)) or None, cadence=cadence,
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
                "tags": ",".join(row.tags), "bounces": 0, "email_key": address_key(row.email),
                "confirm_nonce": new_nonce() if status == "pending" else None},
                index=["email_key"]))
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
