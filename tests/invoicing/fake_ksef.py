"""An in-memory KSeF for the invoicing service's tests: sessions, invoices by hash, verification after a
number of status reads, duplicates refused with 440 naming the first KSeF number, and faults on demand."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from hub.kernel.errors import RetryableError
from hub.kernel.ports.invoicing import OutgoingInvoice, SentInvoice


@dataclass
class _Stored:
    sent: SentInvoice
    number: str
    reads: int = 0


@dataclass
class FakeKsef:
    name: str = "ksef"
    verify_after: int = 1  # status reads before an invoice is verified
    reject: set[str] = field(default_factory=set)  # invoice numbers KSeF refuses (code 450)
    fail_sends: int = 0  # the next sends answer a 5xx (nothing stored)
    lose_answers: int = 0  # the next sends are stored but their answer is lost
    sessions: dict[str, list[_Stored]] = field(default_factory=dict)
    closed: list[str] = field(default_factory=list)
    sends: list[str] = field(default_factory=list)  # every invoice number sent, in order
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: Any = field(default_factory=threading.Lock)

    def open_session(self) -> str:
        with self._lock:
            reference = f"20261202-SO-{next(self._ids):010d}"
            self.sessions[reference] = []
            return reference

    def _first(self, number: str) -> _Stored | None:
        return next((s for stored in self.sessions.values() for s in stored
                     if s.number == number and s.sent.status == "accepted" and s.sent.code == 200), None)

    def send(self, session: str, invoice: OutgoingInvoice) -> str:
        with self._lock:
            assert session not in self.closed, f"sent into closed session {session}"
            if self.fail_sends:
                self.fail_sends -= 1
                raise RetryableError("KSeF answered 503")
            self.sends.append(invoice.key)
            reference = f"20261202-EE-{next(self._ids):010d}"
            self.sessions[session].append(_Stored(SentInvoice(invoice.sha256, reference, "processing", 150,
                                                              "Trwa przetwarzanie"), invoice.key))
            if self.lose_answers:
                self.lose_answers -= 1
                raise RetryableError("the connection broke before KSeF's answer")
            return reference

    def _verified(self, stored: _Stored) -> SentInvoice:
        stored.reads += 1
        if stored.sent.status == "processing" and stored.reads >= self.verify_after:
            first = self._first(stored.number)
            if stored.number in self.reject:
                stored.sent = replace(stored.sent, status="rejected", code=450,
                                      description="Błąd weryfikacji semantyki dokumentu faktury",
                                      details=("P_2: wrong",))
            elif first is not None:
                stored.sent = replace(stored.sent, status="rejected", code=440, description="Duplikat faktury",
                                      details=(f"originalKsefNumber: {first.sent.ksef_number}",))
            else:
                number = f"5260250274-20261202-{len(self.sends):06X}{0:06X}-00"
                stored.sent = replace(stored.sent, status="accepted", code=200, description="Sukces",
                                      ksef_number=number, invoice_number=stored.number,
                                      acquired_at=datetime(2026, 12, 2, 10, 0, tzinfo=UTC))
        return stored.sent

    def find_sent(self, session: str) -> Sequence[SentInvoice]:
        with self._lock:
            return [self._verified(stored) for stored in self.sessions.get(session, [])]

    def invoice_status(self, session: str, reference: str) -> SentInvoice:
        with self._lock:
            return next(self._verified(s) for s in self.sessions[session] if s.sent.reference == reference)

    def upo(self, session: str, reference: str) -> bytes:
        return f"<UPO><Ref>{reference}</Ref></UPO>".encode()

    def close_session(self, session: str) -> None:
        with self._lock:
            self.closed.append(session)
