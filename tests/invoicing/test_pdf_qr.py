"""KSeF's "KOD I" on a PDF invoice (kody-qr.md): {host}/invoice/{seller NIP}/{issue date DD-MM-YYYY}/{SHA-256
of the FA(3) file, Base64URL without padding}, the host the configured one."""

from __future__ import annotations

import base64
import hashlib
from datetime import date
from types import SimpleNamespace

from hub.invoicing.pdf import qr_url


def test_the_qr_code_leads_to_ksefs_page_of_the_invoice() -> None:
    xml = '<?xml version="1.0"?><Faktura>ąę</Faktura>'
    invoice = SimpleNamespace(xml=xml, seller={"nip": "5260250274"}, issue_date=date(2026, 2, 1))
    url = qr_url(invoice, "https://qr-test.ksef.mf.gov.pl")
    digest = base64.urlsafe_b64encode(hashlib.sha256(xml.encode("utf-8")).digest()).decode().rstrip("=")
    assert url == f"https://qr-test.ksef.mf.gov.pl/invoice/5260250274/01-02-2026/{digest}"
    assert len(url.rsplit("/", 1)[1]) == 43 and "=" not in url and "+" not in url and "/" not in digest
