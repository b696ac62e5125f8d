"""KOD II (kody-qr.md) for an invoice issued in KSeF's offline mode: the documents' own example link rebuilt
from its parts, signed with RSASSA-PSS or ECDSA P-256 (P1363) over the link without its scheme, verified
with the certificate's public key; both codes on the offline invoice's PDF; a key that is not the
certificate's, or too weak, refused with its file named."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from hub.invoicing import pdf
from hub.invoicing.qr import OfflineSigner, certificate_link, file_hash
from hub.kernel.errors import ConfigError

EXAMPLE_SIGNED = ("qr-test.ksef.mf.gov.pl/certificate/Nip/1111111111/1111111111/01F20A5D352AE590/"
                  "UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE")  # kody-qr.md, "Format podpisu"


def certificate(tmp_path: Path, key: Any, serial: int = 0x01F20A5D352AE590, name: str = "offline") -> tuple[Path, Path]:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sklep Test"),
                         x509.NameAttribute(NameOID.SERIAL_NUMBER, "VATPL-1111111111")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(serial).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_the_documents_example_link_is_rebuilt_and_its_signature_verifies(tmp_path: Path, kind: str) -> None:
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    signer = OfflineSigner.load(*certificate(tmp_path, key))
    assert signer.serial == "01F20A5D352AE590"  # whole bytes, as the example shows it
    link = certificate_link("https://qr-test.ksef.mf.gov.pl", signer, "1111111111",
                            "UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE")
    head, signature = link.rsplit("/", 1)
    assert head == "https://" + EXAMPLE_SIGNED and "=" not in signature
    raw = _unb64url(signature)
    if kind == "rsa":
        key.public_key().verify(raw, EXAMPLE_SIGNED.encode(), padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                                          salt_length=32), hashes.SHA256())
    else:
        assert len(raw) == 64  # IEEE P1363: R || S, 32 bytes each
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        key.public_key().verify(der, EXAMPLE_SIGNED.encode(), ec.ECDSA(hashes.SHA256()))


def test_a_key_that_is_not_the_certificates_or_too_weak_is_refused(tmp_path: Path) -> None:
    cert, _ = certificate(tmp_path, ec.generate_private_key(ec.SECP256R1()), name="a")
    _, other = certificate(tmp_path, ec.generate_private_key(ec.SECP256R1()), name="b")
    with pytest.raises(ConfigError, match="not the certificate's"):
        OfflineSigner.load(cert, other)
    weak_cert, weak_key = certificate(tmp_path, rsa.generate_private_key(65537, 1024), name="weak")
    with pytest.raises(ConfigError, match="1024 bits"):
        OfflineSigner.load(weak_cert, weak_key)
    with pytest.raises(ConfigError, match=r"missing\.crt"):
        OfflineSigner.load(tmp_path / "missing.crt", other)


def test_an_offline_invoices_pdf_carries_both_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []

    class Recording(pdf.QrCodeWidget):  # type: ignore[misc]
        def __init__(self, value: str, *args: Any, **kwargs: Any) -> None:
            drawn.append(value)
            super().__init__(value, *args, **kwargs)

    monkeypatch.setattr(pdf, "QrCodeWidget", Recording)
    key = ec.generate_private_key(ec.SECP256R1())
    signer = OfflineSigner.load(*certificate(tmp_path, key))
    xml = '<?xml version="1.0"?><Faktura/>'
    invoice = SimpleNamespace(
        number="FV/7/12/2026", kind="VAT", state="issued", offline=True, xml=xml, ksef_number=None,
        seller={"nip": "5260250274", "name": "Sklep", "street": "ul. A 1", "city": "Poznań", "postal_code": "60-001"},
        buyer={"name": "Firma", "nip": "7740001454"}, issue_date=date(2026, 12, 2), sale_date=date(2026, 12, 1),
        currency="PLN", rates=[{"rate": "23", "net": "10.00", "vat": "2.30", "gross": "12.30"}], net=Decimal("10.00"),
        vat=Decimal("2.30"), gross=Decimal("12.30"), payment={"paid_at": "2026-12-01", "form": "transfer"},
        split_payment=False, basis="gross",
        corrects_id=None, reason=None, exchange_rate=None)
    with pytest.raises(ConfigError, match=r"invoicing\.offline_certificate"):
        pdf.render_pdf(invoice, [], qr_host="https://qr-test.ksef.mf.gov.pl")
    drawn.clear()
    assert pdf.render_pdf(invoice, [], qr_host="https://qr-test.ksef.mf.gov.pl", signer=signer).startswith(b"%PDF")
    digest = file_hash(xml.encode())
    assert drawn[1] == f"https://qr-test.ksef.mf.gov.pl/invoice/5260250274/02-12-2026/{digest}"  # KOD I
    assert drawn[0].startswith("https://qr-test.ksef.mf.gov.pl/certificate/Nip/5260250274/5260250274/"
                               f"01F20A5D352AE590/{digest}/")  # KOD II
    drawn.clear()  # an online invoice: KOD I alone
    pdf.render_pdf(SimpleNamespace(**{**vars(invoice), "offline": False}), [], qr_host="https://qr-test.ksef.mf.gov.pl")
    assert len(drawn) == 1 and "/invoice/" in drawn[0]
