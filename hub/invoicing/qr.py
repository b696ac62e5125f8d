"""KSeF's verification links printed as QR codes on an invoice (kody-qr.md), a legal part of its printout.

- KOD I, every invoice sent to KSeF: ``{host}/invoice/{seller NIP}/{P_1 as DD-MM-YYYY}/{SHA-256 of the FA(3)
  file, Base64URL}``; labelled with the KSeF number, or ``OFFLINE`` while it has none.
- KOD II, an invoice issued in offline mode only: ``{host}/certificate/{context type}/{context id}/{seller
  NIP}/{serial number of the seller's KSeF certificate of type Offline}/{file hash}/{signature}``, the
  signature over the link without ``https://`` made with that certificate's private key: RSASSA-PSS
  (SHA-256, MGF1 SHA-256, 32-byte salt, a key of 2048 bits or more) or ECDSA P-256 with SHA-256 as
  R || S (IEEE P1363), Base64URL. Labelled ``CERTYFIKAT``.

Base64URL here is without padding, as the documents' examples are (43 characters for a SHA-256).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from hub.kernel.errors import ConfigError
from hub.platform.config import InvoicingSettings

KOD_II_LABEL = "CERTYFIKAT"
OFFLINE_LABEL = "OFFLINE"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def file_hash(xml: bytes) -> str:
    return b64url(hashlib.sha256(xml).digest())


def invoice_link(host: str, seller_nip: str, issue_date: date, xml: bytes) -> str:
    """KOD I."""
    return f"{host}/invoice/{seller_nip}/{issue_date.strftime('%d-%m-%Y')}/{file_hash(xml)}"


@dataclass(frozen=True)
class OfflineSigner:
    """The seller's KSeF certificate of type Offline and its private key: what signs KOD II."""

    serial: str  # the certificate's serial number, hexadecimal in capitals (01F20A5D352AE590)
    key: Any  # an RSA or EC (P-256) private key
    context_type: str = "Nip"  # the login context the certificate issues in: Nip | InternalId | NipVatUe | PeppolId
    context_id: str | None = None  # None: the seller's NIP

    @classmethod
    def load(cls, certificate: Path, private_key: Path, password: str | None = None, *, context_type: str = "Nip",
             context_id: str | None = None) -> OfflineSigner:
        """From PEM files; a ConfigError naming the file for anything that is not a usable pair."""
        try:
            cert = x509.load_pem_x509_certificate(certificate.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError([f"{certificate}: invoicing.offline_certificate.certificate is not a readable PEM "
                              f"certificate ({exc})"]) from None
        try:
            key = serialization.load_pem_private_key(private_key.read_bytes(),
                                                     password.encode() if password else None)
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError([f"{private_key}: invoicing.offline_certificate.private_key is not a readable PEM "
                              f"private key ({exc})"]) from None
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 2048:
                raise ConfigError([f"{private_key}: an RSA key of {key.key_size} bits; KSeF asks for 2048 or more"])
        elif not (isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)):
            raise ConfigError([f"{private_key}: KOD II is signed with RSA (2048+) or ECDSA P-256, not this key"])
        public = cert.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        if public != key.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo):
            raise ConfigError([f"{private_key}: the private key is not the certificate's ({certificate})"])
        serial = format(cert.serial_number, "X")
        return cls(serial.rjust(len(serial) + len(serial) % 2, "0"), key,  # whole bytes: 01F20A5D352AE590
                   context_type, context_id)

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                                 hashes.SHA256())
        r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def certificate_link(host: str, signer: OfflineSigner, seller_nip: str, xml_hash: str) -> str:
    """KOD II for the FA(3) file whose hash (``file_hash``) is given, in the signer's login context (the
    seller's NIP unless it names another): the link, signed over itself without the scheme."""
    context = f"{signer.context_type}/{signer.context_id or seller_nip}"
    unsigned = f"{host}/certificate/{context}/{seller_nip}/{signer.serial}/{xml_hash}"
    signed_part = unsigned.removeprefix("https://").removeprefix("http://").rstrip("/")
    return f"{unsigned}/{b64url(signer.sign(signed_part.encode('utf-8')))}"


def signer_from(settings: InvoicingSettings) -> OfflineSigner | None:
    """The signer [invoicing.offline_certificate] configures, or None."""
    config = settings.offline_certificate
    if config is None:
        return None
    password = os.environ.get(config.password_env) if config.password_env else None
    if config.password_env and password is None:
        raise ConfigError([f"invoicing.offline_certificate.password_env: the environment has no {config.password_env}"])
    return OfflineSigner.load(Path(config.certificate), Path(config.private_key), password,
                              context_type=config.context_type, context_id=config.context_id)
