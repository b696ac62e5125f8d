"""A batch session's package as pure functions: the ZIP of the invoices' XML files, cut into parts, each part
encrypted; no I/O (sesja-wsadowa.md; open-api.json ``OpenBatchSessionRequest``).

- The archive is a ZIP (``compressionType`` Zip, the default) of one file per invoice. A file's name is a safe
  form of the invoice's key plus ``.xml``, unique in the archive (case-insensitively) and at most 128
  characters: KSeF returns it as ``invoiceFileName`` (maxLength 128). The entries carry a fixed time (the ZIP
  epoch), so the same invoices make the same archive, byte for byte.
- The archive is cut binary (plain byte slices) into parts of at most ``max_part`` bytes BEFORE encryption,
  as evenly as the Ministry's C# sample cuts it (n = ceil(size / max), each ceil(size / n)); at most 50 parts
  and 5 GB in all (weryfikacja-faktury.md "Ograniczenia ilościowe").
- Each part is encrypted on its own, AES-256-CBC/PKCS#7 under the session's one key and IV (crypto.aes_encrypt):
  the request has a single ``encryption`` block, so "each part with a newly generated key" in sesja-wsadowa.md
  §3 can only mean a key new to the session, as the C# sample does.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

from . import crypto

MAX_PARTS = 50  # BatchFileInfo.fileParts maxItems
MAX_ARCHIVE_BYTES = 5_000_000_000  # BatchFileInfo.fileSize maximum
MAX_FILE_NAME = 128  # SessionInvoiceStatusResponse.invoiceFileName maxLength
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class BatchTooLarge(ValueError):
    """The archive needs more than 50 parts, or is over 5 GB."""


@dataclass(frozen=True)
class Part:
    """One encrypted part: what is uploaded, with the size and hash declared for it in ``fileParts``."""

    ordinal: int
    content: bytes  # the ciphertext, uploaded as it is

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        return crypto.sha256_b64(self.content)


@dataclass(frozen=True)
class Package:
    """The whole unencrypted archive's size and hash, its encrypted parts, and each invoice's file name."""

    size: int
    sha256: str
    parts: tuple[Part, ...]
    file_names: tuple[str, ...]  # in the order of the invoices given


def file_names(keys: Sequence[str]) -> list[str]:
    """A safe, unique (case-insensitively: an archive may be unpacked on a file system that folds case) name
    of at most 128 characters for each key: letters, digits, ``.``, ``_`` and ``-``, anything else ``_``; a
    clash gets ``-2``, ``-3``...; a name cut for length keeps a short hash of the key to stay distinct."""
    out: list[str] = []
    used: set[str] = set()
    for key in keys:
        stem = _UNSAFE.sub("_", key).strip("._") or "invoice"
        if len(stem) > 100:
            stem = f"{stem[:90]}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
        name, n = f"{stem}.xml", 1
        while name.lower() in used:
            n += 1
            name = f"{stem}-{n}.xml"
        used.add(name.lower())
        out.append(name)
    return out


def zip_archive(files: Sequence[tuple[str, bytes]]) -> bytes:
    """A ZIP (deflated) of ``(name, content)`` in the order given, every entry dated the ZIP epoch."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def split(data: bytes, max_part: int) -> list[bytes]:
    """Binary parts of at most ``max_part`` bytes, as even as the C# sample makes them; BatchTooLarge past
    50 parts or 5 GB."""
    if not data:
        raise ValueError("an empty archive has no parts")
    if len(data) > MAX_ARCHIVE_BYTES:
        raise BatchTooLarge(f"the archive has {len(data)} bytes, over KSeF's {MAX_ARCHIVE_BYTES} for one batch")
    count = -(-len(data) // max_part)
    if count > MAX_PARTS:
        raise BatchTooLarge(f"the archive needs {count} parts of at most {max_part} bytes, over KSeF's "
                            f"{MAX_PARTS} for one batch")
    size = -(-len(data) // count)
    return [data[start:start + size] for start in range(0, len(data), size)]


def package(files: Sequence[tuple[str, bytes]], session_key: crypto.SessionKey, max_part: int) -> Package:
    """The archive of ``files`` (already named), cut and encrypted under ``session_key``."""
    archive = zip_archive(files)
    parts = tuple(Part(n, crypto.aes_encrypt(session_key, chunk))
                  for n, chunk in enumerate(split(archive, max_part), start=1))
    return Package(len(archive), crypto.sha256_b64(archive), parts, tuple(name for name, _ in files))


__all__ = ["MAX_ARCHIVE_BYTES", "MAX_PARTS", "BatchTooLarge", "Package", "Part", "file_names", "package", "split",
           "zip_archive"]
