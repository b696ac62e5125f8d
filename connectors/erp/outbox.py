"""The file-feed ERPs' outbox: one file per document and format, written atomically, exactly once.

The ERP's import (Subiekt's, Rewizor's, a script) picks the files up and moves them away, into a
subfolder (``processed/``, ``imported/``, ``2025/06/``...) or elsewhere. Exactly once rests on two
rules:

- **Atomic**: a file is written under a temporary name in the same folder (``.NAME.RANDOM.tmp``,
  which no import takes: it starts with a dot and ends in ``.tmp``), flushed to disk, then given its
  final name in one step (a hard link, which fails rather than replace a file that appeared
  meanwhile; a rename where the file system has no hard links). The ERP never sees half a file.
- **Idempotent by reference**: before writing, the outbox and its subfolders (two levels down)
  are searched for the file. If it is there and carries the same reference, nothing is written
  and the same id is returned. So a crash after the file got its name but before the hub recorded
  the id is harmless: the retry finds the file, also when the ERP has already moved it into a
  subfolder. The first write wins: a retry never replaces a file the ERP may be reading.

A temporary file left by a crash before the rename is ignored, and removed once it is older than
ten minutes.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.erp import epp
from connectors.erp.documents import (
    check_restock,
    dumps,
    restock_json,
    sales_json,
    stem_candidates,
)
from hub.kernel.clock import utcnow
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.erp import RestockDocument, SalesDocument

SEARCH_DEPTH = 2  # subfolder levels searched for a file the ERP moved (processed/2025-06/NAME)
STALE_TEMPORARY = 600.0  # seconds after which a crashed write's temporary file is removed
# a hard link is not possible on this file system: fall back to a rename
_NO_LINK = {errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EACCES}


class Outbox:
    def __init__(self, folder: Path, formats: Sequence[str], epp_options: epp.EppOptions, *, log: Any,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.folder = folder
        self.formats = list(formats)
        self.epp = epp_options
        self.log = log
        self.clock = clock

    # --- documents --------------------------------------------------------------------

    def post_sales_document(self, document: SalesDocument) -> str:
        stem = self._stem(document.reference)
        files: dict[str, bytes] = {}
        for fmt in self.formats:  # every format first: a document one of them refuses writes nothing
            if fmt == "json":
                files[fmt] = dumps(sales_json(document))
            elif fmt == "epp":
                files[fmt] = epp.sales_epp(document, self.epp, stem=stem)
        self._publish(document.reference, stem, files)
        return stem

    def restock(self, document: RestockDocument) -> str:
        check_restock(document)
        stem = self._stem(document.reference)
        files: dict[str, bytes] = {}
        for fmt in self.formats:
            if fmt == "json":
                files[fmt] = dumps(restock_json(document))
            elif fmt == "epp":
                data = epp.restock_epp(document, self.epp, stem=stem, now=self.clock())
                if data is not None:
                    files[fmt] = data
        self._publish(document.reference, stem, files)
        return stem

    def cancel_sales_document(self, reference: str, reason: str) -> str:
        """A JSON cancellation of a booked document (EDI++ has no cancellation of a document the hub did
        not number; the ERP's operator or import script reverses the sale from this file)."""
        cancel_reference = f"{reference}#cancel"
        stem = self._stem(cancel_reference)
        data = dumps({"format": "hub.sales_document_cancellation", "version": 1, "reference": cancel_reference,
                      "document_reference": reference, "reason": reason,
                      "cancelled_at": self.clock().isoformat()})
        self._publish(cancel_reference, stem, {"json": data})
        return stem

    # --- files -------------------------------------------------------------------------

    def _check_folder(self) -> None:
        if not self.folder.is_dir():
            raise RetryableError(f"outbox {self.folder}: no such folder (a share not mounted?); the hub does not "
                                 "create it, so that it never writes into an empty mount point")

    def _stem(self, reference: str) -> str:
        """The file name stem for ``reference``: the readable one unless another reference's files
        already hold it."""
        self._check_folder()
        for stem in stem_candidates(reference):
            taken = False
            for fmt in self.formats:
                found = self._find(f"{stem}.{fmt}")
                if found is not None and not self._belongs(found, fmt, reference):
                    self.log.warning("outbox name taken by another document", file=str(found), reference=reference)
                    taken = True
            if not taken:
                return stem
        raise PermanentError(f"outbox {self.folder}: the names for {reference!r} are taken by files of other "
                             "documents")

    def _find(self, name: str) -> Path | None:
        """The file in the outbox, or where the ERP moved it (subfolders, SEARCH_DEPTH levels)."""
        folders = [self.folder]
        for _ in range(SEARCH_DEPTH + 1):
            below: list[Path] = []
            for folder in folders:
                candidate = folder / name
                if candidate.is_file():
                    return candidate
                below.extend(_subfolders(folder))
            folders = below
        return None

    def _belongs(self, path: Path, fmt: str, reference: str) -> bool:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise RetryableError(f"outbox: cannot read {path}: {exc.strerror}") from None
        if fmt == "json":
            try:
                value = json.loads(data.decode("utf-8"))
            except ValueError:
                return False
            return isinstance(value, dict) and value.get("reference") == reference
        return epp.reference_of(data) == epp.stored_reference(reference)

    def _publish(self, reference: str, stem: str, files: dict[str, bytes]) -> None:
        for fmt, data in files.items():
            name = f"{stem}.{fmt}"
            try:
                found = self._find(name)
                if found is not None:  # _stem saw that it is this document's
                    same = found.read_bytes() == data
                    self.log.info("erp document already in the outbox", file=str(found), reference=reference,
                                  same_content=same)
                    continue
                self._write(name, data, reference, fmt)
            except OSError as exc:
                raise RetryableError(f"outbox {self.folder}: cannot write {name}: {exc.strerror or exc}") from None
            self.log.info("erp document written", file=name, reference=reference)

    def _write(self, name: str, data: bytes, reference: str, fmt: str) -> None:
        self._remove_stale(name)
        final = self.folder / name
        temporary = self.folder / f".{name}.{secrets.token_hex(4)}.tmp"
        with open(temporary, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            try:
                os.link(temporary, final)
            except FileExistsError:  # another writer was faster
                if not self._belongs(final, fmt, reference):
                    raise PermanentError(f"outbox {self.folder}: {name} appeared with another document") from None
                return
            except OSError as exc:
                if exc.errno not in _NO_LINK:
                    raise
                os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_folder(self.folder)

    def _remove_stale(self, name: str) -> None:
        prefix, now = f".{name}.", time.time()
        for entry in os.scandir(self.folder):
            if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                try:
                    if now - entry.stat().st_mtime > STALE_TEMPORARY:
                        os.unlink(entry.path)
                        self.log.info("removed a crashed write's temporary file", file=entry.name)
                except FileNotFoundError:
                    pass


def _subfolders(folder: Path) -> Iterator[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in sorted(entries, key=lambda e: e.name):
        if not entry.name.startswith(".") and entry.is_dir():
            yield Path(entry.path)


def _fsync_folder(folder: Path) -> None:
    """Make the new name durable (POSIX); Windows cannot open a folder, and needs no such step."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
