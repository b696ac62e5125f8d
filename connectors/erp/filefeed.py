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
import collections
import csv
import hashlib
import io
import itertools
import json
import os
import time
from collections.abc import Container, Iterator, Mapping, Sequence
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
    check_header,
    normalize_column,
    parse_feed_row,
)
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.erp import ErpBatch, FeedRow, KnownRow, RejectedRecord, RestockDocument, SalesDocument
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
class _Checked:
    """One file after the first pass over it: its fingerprint, how to read it, and the problems that
    put the whole file out (then it gives no rows)."""

    path: Path
    state: _FileState
    encoding: str  # as the file is decoded: "utf-8-sig" when it starts with a byte order mark
    delimiter: str  # CSV only
    problems: tuple[RejectedRecord, ...]


class _NotSettled(Exception):
    """A file is still being written."""


class FileFeed:
    """ErpSource over a feed file or folder. Stateless between calls except a cache of the last parse."""

    def __init__(self, name: str, options: FileFeedOptions, *, fmt: Format, log: Any | None = None) -> None:
        self.name = name
        self.options = options
        self.fmt = fmt
        self.log = log if log is not None else get_logger(f"connectors.{fmt}").bind(connector=name)
        self._stream: Iterator[ErpBatch] | None = None  # the read changes() is delivering in parts
        self._handed_out: str | None = None  # the cursor of the last part changes() returned
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

    def changes(self, cursor: str | None, *, limit: int, known: Container[int] = frozenset()) -> ErpBatch:
        """The whole feed as a read in parts when it changed since ``cursor``, else an empty batch.

        The cursor of every part but the last remembers how many rows were delivered; the next call
        with it continues the read this instance is streaming. A cursor with an offset this instance did
        not hand out is a read that broke off (a crash, a failed transaction): it starts over, as the
        hub applies a read only whole.
        """
        previous = _Cursor.parse(cursor, self._version)
        if (self._stream is not None and cursor is not None and cursor == self._handed_out
                and previous is not None and previous.offset):
            return self._next()
        self._stream = None
        paths = self._paths()
        try:
            if previous is not None and not previous.offset and self._stats(paths) == previous.stats():
                return _empty(cursor)  # the cheap path: nothing was touched, nothing is read
            checked = [self._check(path) for path in paths]
        except _NotSettled as exc:
            self.log.info("erp feed not settled yet, read next run", reason=str(exc))
            return _empty(cursor)
        content = _Cursor(self._version, tuple(c.state for c in checked))
        if previous is not None and not previous.offset and previous.content() == content.content():
            return _empty(content.text())  # touched, same bytes: nothing to deliver, remember the new times
        self.log.info("erp feed changed", files=len(checked), snapshot=not any(c.problems for c in checked))
        self._stream = self._read(checked, max(1, limit), known)
        return self._next()

    def _next(self) -> ErpBatch:
        assert self._stream is not None
        batch = next(self._stream)
        self._handed_out = batch.cursor_after
        if batch.complete:
            self._stream = None
        return batch

    def snapshot(self, *, known: Container[int] = frozenset()) -> Iterator[ErpBatch]:
        """The whole feed regardless of any cursor, in parts of SNAPSHOT_BATCH rows."""
        try:
            checked = [self._check(path) for path in self._paths()]
        except _NotSettled as exc:
            raise RetryableError(f"{self.options.path}: {exc}", retry_after=max(self.options.settle, 1.0)) from None
        return self._read(checked, SNAPSHOT_BATCH, known)

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

    def _check(self, path: Path) -> _Checked:
        """The first pass over a file, streamed: its SHA-256, whether it decodes, and whether it can be
        read as a whole (a header with the required columns, readable CSV, at least one row). Only a
        file that passes gives rows, so a problem found late in a file never leaves half of it read."""
        before = _stat(path)
        age = (time.time_ns() - before.st_mtime_ns) / 1e9
        if age < self.options.settle:
            raise _NotSettled(f"{path.name} was modified {age:.1f}s ago (settle = {self.options.settle}s)")
        encoding = self.options.encoding
        with _open(path) as raw:
            if raw.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8:
                encoding = "utf-8-sig"  # a UTF-8 byte order mark wins over the configured encoding
            raw.seek(0)
            guard = _Utf8Guard() if encoding not in ("utf-8", "utf-8-sig") else None
            hashing = _Hashing(raw, guard)
            text = _text(hashing, encoding)
            delimiter = ""
            try:
                if self.fmt == "csv":
                    delimiter, problems = self._csv_structure(path.name, text)
                else:
                    problems = self._jsonl_structure(path.name, text)
                collections.deque(text, maxlen=0)  # the rest, for the fingerprint
            except UnicodeDecodeError:
                problems = [_decode_problem(path, encoding)]
                collections.deque(iter(lambda: hashing.read(_BLOCK), b""), maxlen=0)
        if guard is not None and guard.is_utf8():
            problems = [guard.problem(path.name, encoding)]
        state = _FileState(path.name, before.st_size, before.st_mtime_ns, hashing.sha.hexdigest())
        _unchanged(path, state, hashing.size)
        return _Checked(path, state, encoding, delimiter, tuple(problems))

    def _csv_structure(self, name: str, text: Iterator[str]) -> tuple[str, list[RejectedRecord]]:
        """The delimiter, and the problems that put the file out: a required column missing, text that
        is not CSV, no rows."""
        header_line = next(text, "")
        delimiter = getattr(self.options, "delimiter", "auto")
        if delimiter == "auto":
            delimiter = _detect_delimiter(header_line.rstrip("\r\n"))
        reader = csv.reader(itertools.chain([header_line], text), delimiter=delimiter)
        try:
            problems = check_header(next(reader, []), source=f"{name}:1")
            if problems:
                return delimiter, problems
            rows = any(any(c.strip() for c in cells) for cells in reader)
            collections.deque(reader, maxlen=0)
        except csv.Error as exc:
            return delimiter, [RejectedRecord(f"{name}:{reader.line_num}", None, "file", "",
                                              f"the file cannot be read as CSV ({exc}); the whole file is ignored")]
        return delimiter, [] if rows else [_no_rows(name)]

    def _jsonl_structure(self, name: str, text: Iterator[str]) -> list[RejectedRecord]:
        """A required key absent from every object counts as a missing column; no lines, no rows."""
        keys: set[str] = set()
        lines = False
        for line in text:
            if not line.strip():
                continue
            lines = True
            try:
                value = json.loads(line, parse_float=Decimal, parse_constant=_no_constant)
            except ValueError:
                continue
            if isinstance(value, dict):
                keys.update(normalize_column(str(k)) for k in value)
        if not lines:
            return [_no_rows(name)]
        return [RejectedRecord(name, None, column, "", "required column missing")
                for column in REQUIRED_COLUMNS if column not in keys]

    def _read(self, checked: Sequence[_Checked], size: int, known: Container[int]) -> Iterator[ErpBatch]:
        """The second pass: every file that passed the first, row by row, in parts of ``size`` rows. A row
        whose fingerprint is ``known`` is not parsed; the others are, and go as rows or rejects."""
        cursor = _Cursor(self._version, tuple(c.state for c in checked))
        whole = not any(c.problems for c in checked)
        rows: list[FeedRow] = []
        unchanged: list[KnownRow] = []
        rejected: list[RejectedRecord] = [p for c in checked for p in c.problems]
        delivered = 0
        positions = itertools.count()
        for file in checked:
            if file.problems:
                continue
            for item in self._items(file, known, positions):
                if isinstance(item, FeedRow):
                    rows.append(item)
                elif isinstance(item, KnownRow):
                    unchanged.append(item)
                else:
                    rejected.append(item)
                if len(rows) + len(unchanged) >= size:
                    delivered += len(rows) + len(unchanged)
                    yield ErpBatch((), (), (), rejected, _Cursor(cursor.version, cursor.files, delivered).text(),
                                   complete=False, snapshot=whole, fresh_read=delivered == len(rows) + len(unchanged),
                                   rows=rows, unchanged=unchanged)
                    rows, unchanged, rejected = [], [], []
        yield ErpBatch((), (), (), rejected, cursor.text(), complete=True, snapshot=whole,
                       fresh_read=delivered == 0, rows=rows, unchanged=unchanged)

    def _items(self, file: _Checked, known: Container[int],
               positions: Iterator[int]) -> Iterator[FeedRow | KnownRow | RejectedRecord]:
        """One file's rows, rejects and unchanged rows; the file must be the one the first pass read."""
        name = file.path.name
        key = hashlib.blake2b(self._version.encode(), digest_size=32).digest()
        with _open(file.path) as raw:
            hashing = _Hashing(raw, None)
            text = _text(hashing, file.encoding)
            try:
                if self.fmt == "csv":
                    yield from self._csv_items(name, text, file.delimiter, key, known, positions)
                else:
                    yield from self._jsonl_items(name, text, key, known, positions)
                collections.deque(text, maxlen=0)
            except (UnicodeDecodeError, csv.Error) as exc:
                raise RetryableError(f"{file.path}: changed while it was read ({exc})",
                                     retry_after=max(self.options.settle, 1.0)) from None
        if hashing.sha.hexdigest() != file.state.sha256:
            raise RetryableError(f"{file.path}: changed while it was read", retry_after=max(self.options.settle, 1.0))
        try:
            _unchanged(file.path, file.state, hashing.size)
        except _NotSettled as exc:
            raise RetryableError(f"{file.path}: {exc}", retry_after=max(self.options.settle, 1.0)) from None

    def _row(self, raw: Mapping[str, Any], source: str, position: int, fingerprint: int, *,
             normalized: bool = False) -> FeedRow | list[RejectedRecord]:
        return parse_feed_row(raw, erp=self.name, source=source, position=position, fingerprint=fingerprint,
                              decimal_comma=self.options.decimal_comma_flag, normalized=normalized)

    def _csv_items(self, name: str, text: Iterator[str], delimiter: str, key: bytes, known: Container[int],
                   positions: Iterator[int]) -> Iterator[FeedRow | KnownRow | RejectedRecord]:
        reader = csv.reader(text, delimiter=delimiter)
        header = next(reader)
        columns = [normalize_column(h) for h in header]
        key = hashlib.blake2b(delimiter.join(header).encode(), digest_size=32, key=key).digest()
        sku_at = columns.index("sku")
        line = reader.line_num
        for cells in reader:
            start, line = line + 1, reader.line_num
            if not "".join(cells).strip():  # every value blank (one C call, not one per value)
                continue
            source = f"{name}:{start}"
            fingerprint = _fingerprint("\x1f".join(cells), key)
            if fingerprint in known:
                yield KnownRow(fingerprint, source, next(positions))
                continue
            extra = cells[len(columns):]
            if len(cells) < len(columns) or any(c.strip() for c in extra):
                sku = cells[sku_at].strip() if len(cells) > sku_at else ""
                hint = (f"a value with an unquoted {delimiter!r}?" if len(cells) > len(columns)
                        else "a cut-off line?")
                yield RejectedRecord(
                    source, sku if 0 < len(sku) <= 100 else None, "row", delimiter.join(cells),
                    f"the row has {len(cells)} values but the header has {len(columns)} columns ({hint})")
                continue
            result = self._row(dict(zip(columns, cells, strict=False)), source, next(positions), fingerprint,
                               normalized=True)
            if isinstance(result, FeedRow):
                yield result
            else:
                yield from result

    def _jsonl_items(self, name: str, text: Iterator[str], key: bytes, known: Container[int],
                     positions: Iterator[int]) -> Iterator[FeedRow | KnownRow | RejectedRecord]:
        for number, line in enumerate(text, 1):
            line = line.strip()
            if not line:
                continue
            source = f"{name}:{number}"
            fingerprint = _fingerprint(line, key)
            if fingerprint in known:
                yield KnownRow(fingerprint, source, next(positions))
                continue
            try:
                value = json.loads(line, parse_float=Decimal, parse_constant=_no_constant,
                                   object_pairs_hook=_unique_keys)
            except _DuplicateKey as exc:
                yield from _twice(source, line, exc.key, f"the key {exc.key!r} appears more than once in "
                                  "the line (which value is meant?)")
                continue
            except ValueError as exc:
                yield RejectedRecord(source, None, "line", line[:500], f"the line is not valid JSON: {exc}")
                continue
            if not isinstance(value, dict):
                yield RejectedRecord(source, None, "line", line[:500], "the line is not a JSON object")
                continue
            clash = _same_column(value)
            if clash is not None:
                first, second = clash
                yield from _twice(source, line, second, f"the keys {first!r} and {second!r} are the same "
                                  f"column {normalize_column(second)} (which value is meant?)")
                continue
            result = self._row(value, source, next(positions), fingerprint)
            if isinstance(result, FeedRow):
                yield result
            else:
                yield from result


_BLOCK = 1 << 20


def _open(path: Path) -> Any:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise _NotSettled(f"{path.name} disappeared (being replaced?)") from None
    except OSError as exc:
        raise RetryableError(f"{path}: cannot read: {exc.strerror}") from None


class _Hashing(io.RawIOBase):
    """A file's bytes as read, into its SHA-256 (and a UTF-8 guard) on the way."""

    def __init__(self, raw: Any, guard: _Utf8Guard | None) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.guard = guard
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            n = self.raw.readinto(buffer)
        except OSError as exc:
            raise RetryableError(f"{self.raw.name}: cannot read: {exc.strerror}") from None
        if n:
            data = bytes(memoryview(buffer)[:n])
            self.sha.update(data)
            self.size += n
            if self.guard is not None:
                self.guard.feed(data)
        return n or 0


def _text(raw: _Hashing, encoding: str) -> Iterator[str]:
    """The file's lines, decoded as they are read (line endings kept, as the csv module wants)."""
    return iter(io.TextIOWrapper(io.BufferedReader(raw, buffer_size=_BLOCK), encoding=encoding, newline=""))


def _fingerprint(text: str, key: bytes) -> int:
    """A signed 64-bit hash of a raw row under the file's parsing options and header."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8, key=key).digest(), "big", signed=True)


def _unchanged(path: Path, state: _FileState, size: int) -> None:
    after = _stat(path)
    if (after.st_size, after.st_mtime_ns) != (state.size, state.mtime_ns) or size != after.st_size:
        raise _NotSettled(f"{path.name} changed while it was read")


def _no_rows(name: str) -> RejectedRecord:
    return RejectedRecord(f"{name}:1", None, "file", "",
                          "the file has no rows; an empty export is ignored so that it cannot zero the catalogue")


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except FileNotFoundError:
        raise _NotSettled(f"{path.name} disappeared (being replaced?)") from None
    except OSError as exc:
        raise RetryableError(f"{path}: cannot read: {exc.strerror}") from None


class _Utf8Guard:
    """Windows-1250 decodes almost any bytes, so UTF-8 read as windows-1250 gives mojibake (two wrong
    letters for "ł") instead of an error: a file configured as windows-1250 whose non-ASCII bytes are all
    valid UTF-8 sequences is UTF-8 (Polish text in windows-1250 practically never is) and is refused,
    named. Fed the file's bytes as they are read."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._valid = True
        self._offset = 0
        self._lines = 1
        self._first: tuple[int, int] | None = None  # the first non-ASCII byte: offset, line
        self._char = ""

    def feed(self, data: bytes) -> None:
        if self._first is None and not data.isascii():
            at = next(i for i, byte in enumerate(data) if byte >= 0x80)
            self._first = (self._offset + at, self._lines + data[:at].count(b"\n"))
        if self._first is None:
            self._lines += data.count(b"\n")
        self._offset += len(data)
        if self._valid:
            try:
                decoded = self._decoder.decode(data)
            except UnicodeDecodeError:
                self._valid = False
                return
            if not self._char and self._first is not None:
                self._char = next((c for c in decoded if ord(c) > 127), "")

    def is_utf8(self) -> bool:
        if self._valid:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self._valid = False
        return self._valid and self._first is not None

    def problem(self, name: str, encoding: str) -> RejectedRecord:
        assert self._first is not None
        start, line = self._first
        char = self._char
        return RejectedRecord(f"{name}:{line}", None, "encoding", encoding,
                              f"the file is UTF-8 (bytes {char.encode().hex(' ')} at offset {start} "
                              f"are {char!r} in UTF-8), "
                              f'not {encoding}: set encoding = "utf-8" for this feed, or export it as {encoding}; '
                              "the whole file is ignored")


def _decode_problem(path: Path, encoding: str) -> RejectedRecord:
    """Where a file stops decoding, read again in blocks to name the byte, its offset and line."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, lines = 0, 1
    with _open(path) as raw:
        for block in iter(lambda: raw.read(_BLOCK), b""):
            buffered = len(decoder.getstate()[0])
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                data = exc.object
                at = offset - buffered + exc.start  # the data decoded began with the bytes held back
                line = lines + bytes(data[:exc.start]).count(b"\n")
                byte = data[exc.start]
                break
            offset += len(block)
            lines += block.count(b"\n")
        else:
            at, line, byte = offset, lines, 0
    hint = ""
    if encoding.startswith("utf-8") and _looks_like_windows_1250(path):
        hint = ' (the file looks like windows-1250, as Subiekt and Optima export: set encoding = "windows-1250")'
    return RejectedRecord(f"{path.name}:{line}", None, "encoding", encoding.removesuffix("-sig"),
                          f"byte 0x{byte:02x} at offset {at} is not valid {encoding.removesuffix('-sig')}{hint}; "
                          f"the whole file is ignored")


_POLISH = frozenset("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ")


def _looks_like_windows_1250(path: Path) -> bool:
    """Every byte defined in windows-1250 and most non-ASCII letters Polish ones."""
    decoder = codecs.getincrementaldecoder("windows-1250")()
    polish = letters = 0
    with _open(path) as raw:
        for block in iter(lambda: raw.read(_BLOCK), b""):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError:
                return False
            for c in text:
                if ord(c) > 127 and c.isalpha():
                    letters += 1
                    polish += c in _POLISH
    return bool(letters) and polish * 2 >= letters


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
