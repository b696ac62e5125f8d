"""Compiled XML schemas shared safely between worker threads.

libxml2's schema compiler is not safe to run in two threads at once: two threads compiling their first
schema together failed with "xmlSchemaPValAttrNodeValue, the given type is not a built-in type"
(bench/invoices.py, the UPO schema and FA(3) compiled by two workers in the same instant). So every
compilation takes one process-wide lock, and each thread keeps its own compiled copy: a schema keeps
the error log of its last validation, so threads sharing one would read each other's messages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from lxml import etree

_COMPILING = threading.Lock()
_PER_THREAD = threading.local()


def per_thread(name: str, build: Callable[[], etree.XMLSchema]) -> etree.XMLSchema:
    """This thread's compiled schema ``name``, built (under the process-wide lock) the first time."""
    schema: etree.XMLSchema | None = getattr(_PER_THREAD, name, None)
    if schema is None:
        with _COMPILING:
            schema = build()
        setattr(_PER_THREAD, name, schema)
    return schema
