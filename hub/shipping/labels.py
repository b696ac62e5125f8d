"""Label files: one per shipment under ``[shipping] label_dir/<day>/``, written atomically with their
SHA-256 kept in the database; and the packer's print file, every label not yet printed in one PDF
(merged with pypdf) or one ZPL stream."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from hub.kernel.ports.carrier import Label


class LabelFileError(Exception):
    """A stored label is missing or not what was stored (its checksum differs)."""


def store_label(label_dir: Path, day: date, reference: str, label: Label) -> tuple[Path, str]:
    folder = label_dir / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{reference}.{label.format}"
    temporary = path.with_suffix(path.suffix + ".part")
    with open(temporary, "wb") as handle:
        handle.write(label.content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)  # a crash leaves the old file or the new one, never half of one
    return path, hashlib.sha256(label.content).hexdigest()


def read_checked(path: str, sha256: str) -> bytes:
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise LabelFileError(f"{path}: cannot read the label ({exc.strerror})") from None
    if hashlib.sha256(content).hexdigest() != sha256:
        raise LabelFileError(f"{path}: the label file changed since it was stored (checksum differs)")
    return content


def merge(labels: Sequence[bytes], fmt: str) -> bytes:
    """One file for the printer: PDF pages in order, or the ZPL labels one after the other."""
    if fmt == "zpl":
        return b"".join(label if label.endswith(b"\n") else label + b"\n" for label in labels)
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for content in labels:
        for page in PdfReader(io.BytesIO(content)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
