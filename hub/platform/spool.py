"""A stream of records kept in a temporary file instead of memory, read back page by page.

A channel's offers are read over HTTP before the transaction that reconciles them (no lock is held
while a vendor pages through a million offers), and a million offers in a list was a gigabyte. The
spool keeps them on disk in pickled pages (the file is this process's own and goes when closed).
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO, Any

PAGE = 2000


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of ``size`` items (the last shorter); itertools.batched from Python 3.12."""
    iterator = iter(items)
    while page := list(islice(iterator, size)):
        yield page


class Spool:
    """Write once (``spool``), then iterate as often as needed; ``close`` removes the file."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="hub-spool-")  # noqa: SIM115 (closed by close())
        self.count = 0

    @classmethod
    def spool(cls, records: Iterable[Any]) -> Spool:
        spool = cls()
        try:
            for page in batched(records, PAGE):
                pickle.dump(page, spool._file, protocol=pickle.HIGHEST_PROTOCOL)
                spool.count += len(page)
        except BaseException:
            spool.close()
            raise
        return spool

    def __iter__(self) -> Iterator[Any]:
        self._file.seek(0)
        while True:
            try:
                page = pickle.load(self._file)
            except EOFError:
                return
            yield from page

    def __len__(self) -> int:
        return self.count

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
