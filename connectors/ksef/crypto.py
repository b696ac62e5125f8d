"""KSeF's cryptography as pure functions (``cryptography``), each as the Ministry's documents spell it.

- The Ministry's public keys come as X.509 certificates, DER in base64 without PEM lines
  (bezpieczenstwo/klucze-publiczne-do-szyfrowania.md §2). The spec's own example of a
  ``KsefTokenEncryption`` entry is a bare SubjectPublicKeyInfo (``MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A...``), so
  a certificate that does not parse is read again as one.
- ``publicKeyId`` = base64(SHA-256(DER SubjectPublicKeyInfo)) (same document, §2).
- The KSeF token travels as RSA-OAEP (SHA-256, MGF1-SHA-256, no label) of the UTF-8 bytes of
  ``"{token}|{timestampMs}"``, ``timestampMs`` being the challenge's Unix milliseconds (uwierzytelnianie.md §2.2).
- Invoices: AES-256-CBC with PKCS#7 padding under a 32-byte key and a 16-byte IV chosen per session; the key
  goes to KSeF RSA-OAEP encrypted (sesja-interaktywna.md, weryfikacja-faktury.md "Poprawne szyfrowanie"). The
  ciphertext carries no IV prefix: the IV is declared once, in ``initializationVector``, and the spec's sizes
  show the ciphertext is the padded plaintext only (invoiceSize 6480 -> encryptedInvoiceSize 6496).
- Hashes are base64(SHA-256(bytes)), 44 characters (``Sha256HashBase64``).
- A KSeF number is ``NIP-YYYYMMDD-TTTTTTTTTTTT-CC``, 35 characters, CC the CRC-8 (polynomial 0x07, initial 0,
  uppercase hex) of the first 32 ASCII characters, hyphens included (faktury/numer-ksef.md; the doc's example
  ``5265877635-20250826-0100001AF629-AF`` checks only that way).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import date

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 32  # AES-256
IV_BYTES = 16  # AES block
KSEF_NUMBER = re.compile(
    r"^([1-9](\d[1-9]|[1-9]\d)\d{7})-(20[2-9][0-9]|2[1-9]\d{2}|[3-9]\d{3})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])"
    r"-([0-9A-F]{6})-?([0-9A-F]{6})-([0-9A-F]{2})$")  # the spec's KsefNumber pattern (35, or 36 from KSeF 1.0)


def _oaep() -> OAEP:
    return OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Standard base64 with its padding; anything else is a ValueError (never silently dropped)."""
    return base64.b64decode(text.encode("ascii"), validate=True)


def sha256_b64(data: bytes) -> str:
    """``invoiceHash``, ``encryptedInvoiceHash``, ``x-ms-meta-hash``, ``certificateId``."""
    return b64(hashlib.sha256(data).digest())


def load_public_key(certificate_b64: str) -> rsa.RSAPublicKey:
    """The RSA key of a ``PublicKeyCertificate.certificate``: an X.509 certificate (DER, base64), else a bare
    SubjectPublicKeyInfo as the spec's example shows. ValueError for anything else or a key that is not RSA."""
    der = unb64(certificate_b64)
    try:
        key = x509.load_der_x509_certificate(der).public_key()
    except ValueError:
        key = serialization.load_der_public_key(der)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"the Ministry's key is {type(key).__name__}, not RSA")
    return key


def public_key_id(key: rsa.RSAPublicKey) -> str:
    """base64(SHA-256(DER SubjectPublicKeyInfo)): what ``publicKeyId`` names."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return sha256_b64(der)


def rsa_encrypt(key: rsa.RSAPublicKey, data: bytes) -> bytes:
    return key.encrypt(data, _oaep())


def rsa_decrypt(key: rsa.RSAPrivateKey, data: bytes) -> bytes:
    """The Ministry's side (the simulator): ValueError when the ciphertext is not for this key."""
    return key.decrypt(data, _oaep())


def encrypt_token(key: rsa.RSAPublicKey, token: str, timestamp_ms: int) -> str:
    """``encryptedToken``: base64(RSA-OAEP("{token}|{timestampMs}"))."""
    return b64(rsa_encrypt(key, f"{token}|{timestamp_ms}".encode()))


def encrypt_symmetric_key(key: rsa.RSAPublicKey, aes_key: bytes) -> str:
    """``encryptedSymmetricKey``: base64(RSA-OAEP(the raw 32-byte key))."""
    if len(aes_key) != KEY_BYTES:
        raise ValueError(f"an AES-256 key has {KEY_BYTES} bytes, not {len(aes_key)}")
    return b64(rsa_encrypt(key, aes_key))


@dataclass(frozen=True)
class SessionKey:
    """One online session's AES key and IV (kept in memory only: it must never reach a log or the database)."""

    key: bytes
    iv: bytes

    def __repr__(self) -> str:
        return "SessionKey(<hidden>)"


def new_session_key() -> SessionKey:
    return SessionKey(os.urandom(KEY_BYTES), os.urandom(IV_BYTES))


def aes_encrypt(session: SessionKey, plaintext: bytes) -> bytes:
    """AES-256-CBC, PKCS#7: the ciphertext alone (no IV prefix)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(session.key), modes.CBC(session.iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def aes_decrypt(session: SessionKey, ciphertext: bytes) -> bytes:
    """The inverse of ``aes_encrypt``; ValueError for a length off the block or a bad padding."""
    if not ciphertext or len(ciphertext) % IV_BYTES:
        raise ValueError("the ciphertext is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(session.key), modes.CBC(session.iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, initial value 0x00, no reflection, no final XOR."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def crc8_hex(text: str) -> str:
    return f"{crc8(text.encode('ascii')):02X}"


def ksef_number_valid(number: str) -> bool:
    """The document's check: 35 characters, the pattern, and the CRC-8 of the first 32 equal to the last 2."""
    if len(number) != 35 or not KSEF_NUMBER.match(number):
        return False
    return crc8_hex(number[:32]) == number[33:]


def build_ksef_number(nip: str, day: date, technical: str) -> str:
    """``NIP-YYYYMMDD-TECHNICAL-CC`` with its CRC-8 (the simulator assigns numbers this way)."""
    if not re.fullmatch(r"[0-9A-F]{12}", technical):
        raise ValueError("the technical part is 12 uppercase hex digits")
    data = f"{nip}-{day:%Y%m%d}-{technical}"
    return f"{data}-{crc8_hex(data)}"


__all__ = [
    "SessionKey", "aes_decrypt", "aes_encrypt", "b64", "build_ksef_number", "crc8", "crc8_hex", "encrypt_symmetric_key",
    "encrypt_token", "ksef_number_valid", "load_public_key", "new_session_key", "public_key_id", "rsa_decrypt",
    "rsa_encrypt", "sha256_b64", "unb64",
]
