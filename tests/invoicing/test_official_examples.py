"""The Ministry's 26 official FA(3) examples: each one the hub supports loads into its model and renders
back as a valid document saying the same (number, dates, buyer, currency, every per-rate total, every
line's value and rate); each one it does not is refused with the reason, and the list is pinned here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree

from hub.invoicing.fa3 import render
from hub.invoicing.fa3_read import NS, Unsupported, read
from hub.invoicing.schemas import fa3, problems

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "specs" / "invoices" / "FA3" / "examples"
# what the hub does not issue, per example (hub/invoicing/fa3_read.py says why)
UNSUPPORTED = {
    2: "StanPrzed", 4: "Podmiot3", 5: "a corrected buyer", 6: "OkresFaKorygowanej", 7: "OkresFaKorygowanej",
    8: "margin", 9: "Podmiot3", 10: "Podmiot3", 11: "Podmiot3", 12: "Podmiot3", 13: "Podmiot3", 14: "Podmiot3",
    15: "UPR", 16: "UPR", 17: "Podmiot3", 18: "Podmiot3", 19: "margin", 24: "OkresFa", 25: "OkresFa",
    26: "Rozliczenie",
}
COMPARED = ["f:Fa/f:P_2", "f:Fa/f:P_1", "f:Fa/f:KodWaluty", "f:Fa/f:RodzajFaktury",
            "f:Podmiot1/f:DaneIdentyfikacyjne/f:NIP", "f:Podmiot2/f:DaneIdentyfikacyjne/f:NIP",
            "f:Podmiot2/f:DaneIdentyfikacyjne/f:NrVatUE", "f:Podmiot2/f:DaneIdentyfikacyjne/f:NrID",
            "f:Fa/f:DaneFaKorygowanej/f:NrKSeFFaKorygowanej", "f:Fa/f:Adnotacje/f:P_18A"]
TOTALS = ["P_15", "P_13_1", "P_14_1", "P_14_1W", "P_13_2", "P_14_2", "P_13_3", "P_14_3", "P_13_6_1", "P_13_6_2",
          "P_13_6_3", "P_13_7", "P_13_8", "P_13_9", "P_13_10"]


def _example(number: int) -> Path:
    found = [p for p in EXAMPLES.glob("*.xml") if p.stem.lower() == f"fa_3_przykład_{number}"]
    assert len(found) == 1, number
    return found[0]


def _amount(text: str | None) -> object:
    from decimal import Decimal

    return None if text is None else Decimal(text)


@pytest.mark.parametrize("number", range(1, 27))
def test_an_official_example_round_trips_or_is_refused_with_its_reason(number: int) -> None:
    original = _example(number).read_bytes()
    assert problems(fa3(), original) == []
    if number in UNSUPPORTED:
        with pytest.raises(Unsupported, match=UNSUPPORTED[number]):
            read(original)
        return
    invoice = read(original)
    corrected = (SimpleNamespace(number=invoice.corrected_number, issue_date=invoice.corrected_date)
                 if invoice.kind == "KOR" else None)
    again = render(invoice, invoice.lines, corrected=corrected, corrected_ksef=invoice.corrected_ksef,  # type: ignore[arg-type]
                   created_at=datetime(2026, 12, 2, tzinfo=UTC))
    assert problems(fa3(), again) == []
    before, after = etree.fromstring(original), etree.fromstring(again)
    for path in COMPARED:
        assert (before.findtext(path, namespaces=NS) or "").strip() == (after.findtext(path, namespaces=NS) or ""), path
    for name in TOTALS:
        assert _amount(before.findtext(f"f:Fa/f:{name}", namespaces=NS)) == \
            _amount(after.findtext(f"f:Fa/f:{name}", namespaces=NS)), name
    rows = [(_amount(r.findtext("f:P_11", namespaces=NS) or r.findtext("f:P_11A", namespaces=NS)),
             r.findtext("f:P_12", namespaces=NS)) for r in before.findall("f:Fa/f:FaWiersz", NS)]
    assert rows == [(_amount(r.findtext("f:P_11", namespaces=NS) or r.findtext("f:P_11A", namespaces=NS)),
                     r.findtext("f:P_12", namespaces=NS)) for r in after.findall("f:Fa/f:FaWiersz", NS)]
