"""Compiled schemas across worker threads (hub.platform.xsd): one copy per thread, compiled one at a time
(libxml2's compiler broke when two threads compiled at once)."""

from __future__ import annotations

import threading
import time

from lxml import etree

from hub.platform.xsd import per_thread

XSD = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:element name="a" type="xs:int"/></xs:schema>"""


def test_each_thread_compiles_its_own_copy_and_never_two_at_once() -> None:
    running, most, built = 0, 0, []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def build() -> etree.XMLSchema:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)  # long enough for another thread to come in if the lock let it
        schema = etree.XMLSchema(etree.fromstring(XSD))
        with lock:
            running -= 1
            built.append(schema)
        return schema

    got: list[etree.XMLSchema] = []

    def worker() -> None:
        start.wait()
        first = per_thread("test:a", build)
        assert per_thread("test:a", build) is first  # kept for the thread
        assert first.validate(etree.fromstring(b"<a>5</a>")) and not first.validate(etree.fromstring(b"<a>x</a>"))
        with lock:
            got.append(first)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1 and len(built) == 8 and len({id(schema) for schema in got}) == 8
