"""ERP file feeds: a CSV (``kind = "csv"``) or JSON-lines (``kind = "jsonl"``) export, or a folder of them.

This is how a small seller's ERP (Subiekt, Optima, a spreadsheet) talks to the
hub: it writes a file of the whole catalogue now and then. A file carries no
per-row change marks, so the cursor is a fingerprint of the file(s) and every
change is delivered as a full snapshot (the hub then zeroes stock the feed no
longer lists). Two things must never happen: a half-written file read as the
catalogue, and a broken export zeroing it. Files younger than ``settle`` or
changing while read are left for the next run; a file that cannot be read as a
whole (undecodable, a required column missing, no rows) gives no records and
turns the run into a plain update (``snapshot=False``).

With an ``outbox`` folder configured, the same connector also takes the hub's accepted orders as
sales documents and returned goods back into stock (ErpSalesSink): one file per document and
format (JSON, EDI++ for Subiekt and Rewizor) that the ERP imports (``outbox.py``).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, field_validator

from connectors.erp.epp import EppOptions
from connectors.erp.outbox import Outbox
from hub.catalog.feed_rules import (
    COLUMNS,
    REQUIRED_COLUMNS,
    FeedRules,
    ParsedRow,
    check_header,
    normalize_column,
    parse_row,
    records,
)
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.erp import ErpBatch, RejectedRecord, RestockDocument, SalesDocument
from hub.platform.config import parse_duration
from hub.platform.logs import get_logger
from hub.platform.registry import ConnectorSpec

Format = Literal["csv", "jsonl"]
SNAPSHOT_BATCH = 5000  # rows per batch of snapshot(); changes() takes the spine's limit
_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "windows-1250": "windows-1250", "cp1250": "windows-1250",
              "windows1250": "windows-1250"}


def _settle(value: Any) -> float:
    """Like every duration in the config, but 0 (read at once) is allowed."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 2s (or 0), not true or false")
    if value in (0, "0", "0s"):
        return 0.0
    return parse_duration(value)


def _auto_or_bool(value: Any) -> Literal["auto"] | bool:
    if isinstance(value, bool):
        return value
    if value == "auto":
        return "auto"
    raise ValueError('expected true, false or "auto"')


class FileFeedOptions(BaseModel):
    """``[connectors.NAME]`` keys shared by both formats."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path  # a file, or a folder whose *.csv / *.jsonl files together are the feed
    encoding: Literal["utf-8", "windows-1250"] = "utf-8"
    # strict: "yes" or 1 is a typo, not true (it decides how every price is read)
    decimal_comma: Annotated[Literal["auto"] | bool, PlainValidator(_auto_or_bool)] = "auto"
    # a file modified less than this long ago may still be being written: it is read next run
    settle: float = Field(2.0, ge=0)
    # the folder the ERP imports sales documents and restocks from; unset: the connector takes none
    outbox: Path | None = None
    outbox_formats: list[Literal["json", "epp"]] = Field(default_factory=lambda: ["json", "epp"], min_length=1)
    epp: EppOptions = EppOptions()

    @field_validator("outbox_formats")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each format at most once")
        return value

    @field_validator("encoding", mode="before")
    @classmethod
    def _encoding_alias(cls, value: Any) -> Any:
        return _ENCODINGS.get(value.strip().lower(), value) if isinstance(value, str) else value

    @field_validator("settle", mode="before")
    @classmethod
    def _settle_duration(cls, value: Any) -> float:
        return _settle(value)

    @property
    def decimal_comma_flag(self) -> bool | None:
        return None if self.decimal_comma == "auto" else bool(self.decimal_comma)


class CsvOptions(FileFeedOptions):
    delimiter: Literal["auto", ",", ";"] = "auto"


class JsonlOptions(FileFeedOptions):
    pass


@dataclass(frozen=True)
class _FileState:
    name: str
    size: int
    mtime_ns: int
    sha256: str = ""

    def token(self) -> str:
        return f"{quote(self.name, safe='')}:{self.size}:{self.mtime_ns}:{self.sha256}"


@dataclass(frozen=True)
class _Cursor:
    """``VERSION;NAME:SIZE:MTIME_NS:SHA256;...`` and, while a run is split into batches, ``;@ROWS``
    delivered. VERSION names the format and the parsing options, so changing an option (say the
    encoding) makes the next run read the feed anew."""

    version: str
    files: tuple[_FileState, ...]
    offset: int = 0

    def text(self) -> str:
        parts = [self.version, *(f.token() for f in self.files)]
        if self.offset:
            parts.append(f"@{self.offset}")
        return ";".join(parts)

    @classmethod
    def parse(cls, text: str | None, version: str) -> _Cursor | None:
        """None for no cursor and for one written under other options (the feed is then read anew)."""
        if not text:
            return None
        written, *parts = text.split(";")
        if written != version:
            return None
        offset = 0
        if parts and parts[-1].startswith("@"):
            offset = int(parts.pop()[1:]) if parts[-1][1:].isdigit() else 0
        files = []
        for part in parts:
            fields = part.split(":")
            if len(fields) != 4 or not (fields[1].isdigit() and fields[2].lstrip("-").isdigit()):
                return None
            files.append(_FileState(unquote(fields[0]), int(fields[1]), int(fields[2]), fields[3]))
        return cls(version, tuple(files), offset)

    def stats(self) -> list[tuple[str, int, int]]:
        return [(f.name, f.size, f.mtime_ns) for f in self.files]

    def content(self) -> list[tuple[str, str]]:
        return [(f.name, f.sha256) for f in self.files]


@dataclass(frozen=True)
class _Feed:
    """One read of the source: its rows, after the per-row and cross-row rules."""

    cursor: _Cursor
    rows: Sequence[ParsedRow]
    rejected: Sequence[RejectedRecord]
    # every file was read whole, so the rows are the catalogue (a snapshot)
    whole: bool


class _NotSettled(Exception):
    """A file is still being written."""


class FileFeed:
    """ErpSource over a feed file or folder. Stateless between calls except a cache of the last parse."""

    def __init__(self, name: str, options: FileFeedOptions, *, fmt: Format, log: Any | None = None) -> None:
        self.name = name
        self.options = options
        self.fmt = fmt
        self.log = log if log is not None else get_logger(f"connectors.{fmt}").bind(connector=name)
        self._cache: _Feed | None = None
        self._handed_out: str | None = None  # the cursor of the last batch changes() returned
        parsing = (fmt, options.encoding, str(options.decimal_comma), getattr(options, "delimiter", ""))
        self._version = "f1." + hashlib.sha256(repr(parsing).encode()).hexdigest()[:8]
        self._outbox = None if options.outbox is None else Outbox(
            options.outbox, options.outbox_formats, options.epp, log=self.log)

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this instance does as configured: sales documents and restocks only with an outbox."""
        return _CAPABILITIES if self._outbox is None else _CAPABILITIES | _OUTBOX_CAPABILITIES

    # --- the sales sink (ErpSalesSink) --------------------------------------------------

    def post_sales_document(self, document: SalesDocument) -> str:
        """Write the document into the outbox (once per reference); its id is the files' name stem."""
        return self._sink().post_sales_document(document)

    def cancel_sales_document(self, reference: str, reason: str) -> str:
        """A cancellation file next to the document, found again before a retry writes it twice."""
        return self._sink().cancel_sales_document(reference, reason)

    def restock(self, document: RestockDocument) -> str:
        return self._sink().restock(document)

    def _sink(self) -> Outbox:
        if self._outbox is None:
            raise PermanentError(
                f"ERP connector {self.name!r} has no outbox, so it takes no sales documents: set "
                f'outbox = "/path/to/folder" under [connectors.{self.name}] (a folder the ERP imports from; '
                'outbox_formats = ["json", "epp"] by default, see connectors/erp/README.md)')
        return self._outbox

    # --- the port -----------------------------------------------------------------

    def changes(self, cursor: str | None, *, limit: int) -> ErpBatch:
        """The whole feed as a snapshot when it changed since ``cursor``, else an empty batch.

        A changed feed larger than ``limit`` rows comes in several batches; the cursor of all
        but the last remembers how many rows of this content were delivered.
        """
        previous = _Cursor.parse(cursor, self._version)
        paths = self._paths()
        try:
            if previous is not None and not previous.offset and self._stats(paths) == previous.stats():
                return _empty(cursor)  # the cheap path: nothing was touched, nothing is read
            feed = self._load(paths)
        except _NotSettled as exc:
            self.log.info("erp feed not settled yet, read next run", reason=str(exc))
            return _empty(cursor)
        start = 0
        if previous is not None and previous.content() == feed.cursor.content():
            if not previous.offset:  # touched, same bytes: nothing to deliver, remember the new times
                return _empty(feed.cursor.text())
            # The next batch of the run this instance is delivering. A cursor with an offset this
            # instance did not hand out is a run that broke off (a crash, a failed transaction):
            # it starts over, as the hub zeroes what a snapshot run did not list.
            if cursor == self._handed_out:
                start = previous.offset
        if start == 0:
            self.log.info("erp feed changed", files=len(feed.cursor.files), rows=len(feed.rows),
                          rejected=len(feed.rejected), snapshot=feed.whole)
        batch = _batch(feed, start, max(1, limit))
        self._handed_out = batch.cursor_after
        return batch

    def snapshot(self) -> Iterator[ErpBatch]:
        """The whole feed regardless of any cursor, in batches of SNAPSHOT_BATCH rows."""
        try:
            feed = self._load(self._paths())
        except _NotSettled as exc:
            raise RetryableError(f"{self.options.path}: {exc}", retry_after=max(self.options.settle, 1.0)) from None
        start = 0
        while True:
            batch = _batch(feed, start, SNAPSHOT_BATCH)
            yield batch
            if batch.complete:
                return
            start += SNAPSHOT_BATCH

    # --- reading --------------------------------------------------------------------

    def _paths(self) -> list[Path]:
        """The feed's files; a missing feed is an error, never an empty catalogue."""
        path = self.options.path
        if path.is_file():
            return [path]
        if not path.is_dir():
            raise RetryableError(f"{path}: no such file or folder (the ERP export has not run?)")
        suffix = f".{self.fmt}"
        found = sorted(p for p in path.iterdir()
                       if p.suffix.lower() == suffix and not p.name.startswith((".", "~")) and p.is_file())
        if not found:
            raise RetryableError(f"{path}: no *{suffix} file in the folder (the ERP export has not run?)")
        return found

    def _stats(self, paths: Sequence[Path]) -> list[tuple[str, int, int]]:
        out = []
        for path in paths:
            st = _stat(path)
            out.append((path.name, st.st_size, st.st_mtime_ns))
        return out

    def _load(self, paths: Sequence[Path]) -> _Feed:
        states: list[_FileState] = []
        contents: dict[str, bytes] = {}
        now_ns = time.time_ns()
        for path in paths:
            before = _stat(path)
            age = (now_ns - before.st_mtime_ns) / 1e9
            if age < self.options.settle:
                raise _NotSettled(f"{path.name} was modified {age:.1f}s ago (settle = {self.options.settle}s)")
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise RetryableError(f"{path}: cannot read: {exc.strerror}") from None
            after = _stat(path)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or len(data) != after.st_size:
                raise _NotSettled(f"{path.name} changed while it was read")
            states.append(_FileState(path.name, after.st_size, after.st_mtime_ns, hashlib.sha256(data).hexdigest()))
            contents[path.name] = data
        cursor = _Cursor(self._version, tuple(states))
        if self._cache is not None and self._cache.cursor == cursor:
            return self._cache
        self._cache = self._parse(cursor, contents)
        return self._cache

    def _parse(self, cursor: _Cursor, contents: Mapping[str, bytes]) -> _Feed:
        rules = FeedRules()
        rows: list[ParsedRow] = []
        rejected: list[RejectedRecord] = []
        whole = True
        for state in cursor.files:
            parsed, problems, file_whole = self._parse_file(state.name, contents[state.name])
            rejected.extend(problems)
            whole = whole and file_whole
            for row in parsed:
                broken = rules.check(row)
                if broken:
                    rejected.extend(broken)
                else:
                    rows.append(row)
        return _Feed(cursor, rows, rejected, whole)

    def _parse_file(self, name: str, data: bytes) -> tuple[list[ParsedRow], list[RejectedRecord], bool]:
        """Rows and rejects of one file, and whether it was read whole (else it gives no rows)."""
        text = _decode(name, data, self.options.encoding)
        if isinstance(text, RejectedRecord):
            return [], [text], False
        rejected: list[RejectedRecord] = []
        problems: list[RejectedRecord] = []
        items = (self._csv_items if self.fmt == "csv" else self._jsonl_items)(name, text, rejected, problems)
        # each row parsed as it is read, its raw values let go at once (holding every raw row of a
        # 1,000,000-row file until all were read was a third of the read's memory)
        rows: list[ParsedRow] = []
        invalid: list[RejectedRecord] = []  # rows read whole whose values the rules refuse
        any_item = False
        for source, raw in items:
            any_item = True
            result = parse_row(raw, erp=self.name, source=source, decimal_comma=self.options.decimal_comma_flag)
            if isinstance(result, ParsedRow):
                rows.append(result)
            else:
                invalid.extend(result)
        if problems:  # the file is out as a whole: its rows' own faults are not reported
            return [], rejected + problems, False
        if not any_item and not rejected:
            return [], [RejectedRecord(f"{name}:1", None, "file", "",
                                       "the file has no rows; an empty export is ignored so that it cannot "
                                       "zero the catalogue")], False
        return rows, rejected + invalid, True

    def _csv_items(self, name: str, text: str, rejected: list[RejectedRecord],
                   problems: list[RejectedRecord]) -> Iterator[tuple[str, dict[str, Any]]]:
        """The (source, raw row) items as they are read; rejected rows and the problems that reject the
        whole file go into the lists given (a problem found late empties ``rejected``: the file is out)."""
        delimiter = getattr(self.options, "delimiter", "auto")
        if delimiter == "auto":
            delimiter = _detect_delimiter(text.partition("\n")[0].rstrip("\r"))
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            header = next(reader, [])
            problems.extend(check_header(header, source=f"{name}:1"))
            if problems:
                return
            columns = [normalize_column(h) for h in header]
            sku_at = columns.index("sku")
            line = reader.line_num
            for cells in reader:
                start, line = line + 1, reader.line_num
                if not any(c.strip() for c in cells):
                    continue
                source = f"{name}:{start}"
                extra = cells[len(columns):]
                if len(cells) < len(columns) or any(c.strip() for c in extra):
                    sku = cells[sku_at].strip() if len(cells) > sku_at else ""
                    hint = (f"a value with an unquoted {delimiter!r}?" if len(cells) > len(columns)
                            else "a cut-off line?")
                    rejected.append(RejectedRecord(
                        source, sku if 0 < len(sku) <= 100 else None, "row", delimiter.join(cells),
                        f"the row has {len(cells)} values but the header has {len(columns)} columns ({hint})"))
                    continue
                yield source, dict(zip(columns, cells, strict=False))
        except csv.Error as exc:
            rejected.clear()
            problems.append(RejectedRecord(f"{name}:{reader.line_num}", None, "file", "",
                                           f"the file cannot be read as CSV ({exc}); the whole file is ignored"))

    def _jsonl_items(self, name: str, text: str, rejected: list[RejectedRecord],
                     problems: list[RejectedRecord]) -> Iterator[tuple[str, dict[str, Any]]]:
        """As _csv_items; a required key absent from every object counts as a missing column."""
        keys: set[str] = set()
        for number, line in enumerate(text.split("\n"), 1):
            line = line.strip()
            if not line:
                continue
            source = f"{name}:{number}"
            try:
                value = json.loads(line, parse_float=Decimal, parse_constant=_no_constant,
                                   object_pairs_hook=_unique_keys)
            except _DuplicateKey as exc:
                rejected.extend(_twice(source, line, exc.key, f"the key {exc.key!r} appears more than once in "
                                       "the line (which value is meant?)"))
                continue
            except ValueError as exc:
                rejected.append(RejectedRecord(source, None, "line", line[:500], f"the line is not valid JSON: {exc}"))
                continue
            if not isinstance(value, dict):
                rejected.append(RejectedRecord(source, None, "line", line[:500], "the line is not a JSON object"))
                continue
            clash = _same_column(value)
            if clash is not None:
                first, second = clash
                rejected.extend(_twice(source, line, second, f"the keys {first!r} and {second!r} are the same "
                                       f"column {normalize_column(second)} (which value is meant?)"))
                continue
            keys.update(normalize_column(str(k)) for k in value)
            yield source, value
        problems.extend(RejectedRecord(name, None, column, "", "required column missing")
                        for column in REQUIRED_COLUMNS if column not in keys)


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:
        raise _NotSettled(f"{path.name} disappeared (being replaced?)") from None
    except OSError as exc:
        raise RetryableError(f"{path}: cannot read: {exc.strerror}") from None


def _decode(name: str, data: bytes, encoding: str) -> str | RejectedRecord:
    """Text of a file; a UTF-8 byte order mark wins over the configured encoding.

    Windows-1250 decodes almost any bytes, so UTF-8 read as windows-1250 gives mojibake (two wrong letters for "ł")
    instead of an error: a file configured as windows-1250 whose non-ASCII bytes are all valid UTF-8
    sequences is UTF-8 (Polish text in windows-1250 practically never is) and is refused, named.
    """
    if data.startswith(codecs.BOM_UTF8):
        data, encoding = data[len(codecs.BOM_UTF8):], "utf-8"
    if encoding != "utf-8" and not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            start = next(i for i, byte in enumerate(data) if byte >= 0x80)
            line = data[:start].count(b"\n") + 1
            char = data[start:start + 4].decode("utf-8", "ignore")[:1]
            return RejectedRecord(f"{name}:{line}", None, "encoding", encoding,
                                  f"the file is UTF-8 (bytes {char.encode().hex(' ')} at offset {start} "
                                  f"are {char!r} in UTF-8), "
                                  f'not {encoding}: set encoding = "utf-8" for this feed, or export it as {encoding}; '
                                  "the whole file is ignored")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        hint = ""
        if encoding == "utf-8" and _looks_like_windows_1250(data):
            hint = ' (the file looks like windows-1250, as Subiekt and Optima export: set encoding = "windows-1250")'
        return RejectedRecord(f"{name}:{line}", None, "encoding", encoding,
                              f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not valid {encoding}{hint}; "
                              f"the whole file is ignored")


_POLISH = frozenset("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ")


def _looks_like_windows_1250(data: bytes) -> bool:
    """Every byte defined in windows-1250 and most non-ASCII letters Polish ones."""
    try:
        text = data.decode("windows-1250")
    except UnicodeDecodeError:
        return False
    letters = [c for c in text if ord(c) > 127 and c.isalpha()]
    return bool(letters) and sum(c in _POLISH for c in letters) * 2 >= len(letters)


def _detect_delimiter(header_line: str) -> str:
    """The delimiter under which the header names the most feed columns (ties: the more frequent one)."""

    def score(delimiter: str) -> tuple[int, int]:
        names = {normalize_column(c) for c in next(csv.reader([header_line], delimiter=delimiter), [])}
        return len(names & set(COLUMNS)), header_line.count(delimiter)

    return max((",", ";"), key=score)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


class _DuplicateKey(Exception):
    """A JSON object names one key twice: json.loads would silently keep the last value."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object_pairs_hook: the object as a dict, or _DuplicateKey."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _same_column(row: Mapping[str, Any]) -> tuple[str, str] | None:
    """Two keys of a JSON-lines row that are one feed column ("sku" and "SKU"), as a CSV header
    naming a column twice."""
    seen: dict[str, str] = {}
    for key in row:
        column = normalize_column(str(key))
        if column in COLUMNS:
            if column in seen:
                return seen[column], str(key)
            seen[column] = str(key)
    return None


def _twice(source: str, line: str, key: str, reason: str) -> list[RejectedRecord]:
    """The rejects of a JSON-lines row naming a key twice: one per SKU the row names (so each keeps
    its last good stock rather than dropping out of the snapshot), or one without a SKU."""
    try:  # the row's own (key, value) pairs, duplicates included; a JSON array gives none
        top = json.loads(line, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=list)
    except ValueError:
        top = []
    pairs = [p for p in top if isinstance(p, tuple)] if isinstance(top, list) else []
    skus: list[str] = []
    for k, v in pairs:
        text = None if isinstance(v, bool) or not isinstance(v, str | int) else str(v).strip()
        if normalize_column(str(k)) == "sku" and text and len(text) <= 100 and text not in skus:
            skus.append(text)
    field = normalize_column(key) if normalize_column(key) in COLUMNS else "line"
    return [RejectedRecord(source, sku, field, line[:500], reason) for sku in skus or [None]]


def _empty(cursor: str | None) -> ErpBatch:
    return ErpBatch(products=(), stock=(), prices=(), rejected=(), cursor_after=cursor)


def _batch(feed: _Feed, start: int, size: int) -> ErpBatch:
    """Rows [start, start+size) of a feed; the rejects ride with the first batch."""
    end = start + size
    complete = end >= len(feed.rows)
    products, stock, prices = records(feed.rows[start:end])
    cursor = feed.cursor if complete else _Cursor(feed.cursor.version, feed.cursor.files, end)
    return ErpBatch(products=products, stock=stock, prices=prices,
                    rejected=list(feed.rejected) if start == 0 else [],
                    cursor_after=cursor.text(), complete=complete, snapshot=feed.whole, fresh_read=start == 0)


def _factory(fmt: Format) -> Any:
    def build(name: str, options: FileFeedOptions, services: Any) -> FileFeed:
        log = getattr(services, "log", None)
        return FileFeed(name, options, fmt=fmt, log=log)

    return build


_CAPABILITIES = frozenset({Capability.ERP_INCREMENTAL, Capability.ERP_SNAPSHOT})
_OUTBOX_CAPABILITIES = frozenset({Capability.ERP_SALES_DOCUMENTS, Capability.ERP_RESTOCK})

def _outbox_paths(options: FileFeedOptions) -> list[Path]:
    return [] if options.outbox is None else [options.outbox]


def _feed_paths(options: FileFeedOptions) -> dict[str, Path]:
    return {"path": options.path}


# The kind's capabilities include the sales documents an outbox enables; an instance's own
# ``capabilities`` say whether it has one.
CSV_SPEC = ConnectorSpec(
    kind="csv", role="erp",
    description="ERP file feed: a CSV export (Subiekt, Optima, a spreadsheet) or a folder of them; "
                "sales documents into an outbox folder",
    capabilities=_CAPABILITIES | _OUTBOX_CAPABILITIES, factory=_factory("csv"), options_model=CsvOptions,
    written_paths=_outbox_paths, read_paths=_feed_paths,
)

JSONL_SPEC = ConnectorSpec(
    kind="jsonl", role="erp",
    description="ERP file feed: JSON lines with the CSV feed's fields, or a folder of such files; "
                "sales documents into an outbox folder",
    capabilities=_CAPABILITIES | _OUTBOX_CAPABILITIES, factory=_factory("jsonl"), options_model=JsonlOptions,
    written_paths=_outbox_paths, read_paths=_feed_paths,
)
