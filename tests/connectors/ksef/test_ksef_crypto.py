"""KSeF's cryptography against the documents: what the client encrypts, the simulator's private key reads back;
the CRC-8 of the KSeF numbers the spec prints; sizes as the spec's examples show them."""

from __future__ import annotations

import base64
import contextlib
from datetime import date

import pytest
from cryptography.hazmat.primitives import serialization

from connectors.ksef import crypto
from connectors.ksef.simulator import KsefSimulator

# faktury/numer-ksef.md's example and the KSeF numbers in open-api.json's and the UPO examples
SPEC_NUMBERS = [
    "5265877635-20250826-0100001AF629-AF",
    "5265877635-20250916-0200A0D6723E-C2",
    "5265877635-20250916-010040741B3E-46",
    "5265877635-20250626-010080DD2B5E-26",
    "5555555555-20250828-010080615740-E4",
]


@pytest.mark.parametrize("number", SPEC_NUMBERS)
def test_the_spec_numbers_pass_the_crc8_check(number: str) -> None:
    assert crypto.ksef_number_valid(number)
    assert crypto.crc8_hex(number[:32]) == number[-2:]


@pytest.mark.parametrize("number", [
    "5265877635-20250826-0100001AF629-AE",  # the checksum off by one
    "5265877635-20250826-0100001AF628-AF",  # a technical digit changed
    "5265877635-20250826-0100001af629-AF",  # lowercase hex
    "5265877635-20250826-0100001AF629AF",  # 34 characters
    "0265877635-20250826-0100001AF629-AF",  # not a NIP
])
def test_damaged_numbers_fail(number: str) -> None:
    assert not crypto.ksef_number_valid(number)


def test_built_numbers_check() -> None:
    number = crypto.build_ksef_number("5260250274", date(2026, 12, 2), "0100001AF629")
    assert number.startswith("5260250274-20261202-0100001AF629-") and len(number) == 35
    assert crypto.ksef_number_valid(number)
    with pytest.raises(ValueError):
        crypto.build_ksef_number("5260250274", date(2026, 12, 2), "0100001af629")


def test_crc8_parameters() -> None:
    """Polynomial 0x07, initial 0: the standard check value of CRC-8 (SMBus) over "123456789" is 0xF4."""
    assert crypto.crc8(b"123456789") == 0xF4
    assert crypto.crc8(b"") == 0


def test_token_round_trip_through_the_simulators_key(sim: KsefSimulator) -> None:
    cert = sim._certificates()[0]
    key = crypto.load_public_key(cert["certificate"])
    assert crypto.public_key_id(key) == cert["publicKeyId"]
    encrypted = crypto.encrypt_token(key, "20251010-EC-1DCE3E3000-12ECB5B36E-45|nip-5260250274|abc", 1752236636015)
    plain = crypto.rsa_decrypt(sim.private_key("KsefTokenEncryption"), crypto.unb64(encrypted))
    assert plain == b"20251010-EC-1DCE3E3000-12ECB5B36E-45|nip-5260250274|abc|1752236636015"


def test_symmetric_key_round_trip_and_aes(sim: KsefSimulator) -> None:
    key = crypto.load_public_key(sim._certificates()[0]["certificate"])
    session = crypto.new_session_key()
    assert len(session.key) == 32 and len(session.iv) == 16 and "hidden" in repr(session)
    wrapped = crypto.encrypt_symmetric_key(key, session.key)
    assert crypto.rsa_decrypt(sim.private_key(), base64.b64decode(wrapped)) == session.key
    xml = b"x" * 6480
    ciphertext = crypto.aes_encrypt(session, xml)
    assert len(ciphertext) == 6496  # the spec's example: invoiceSize 6480 -> encryptedInvoiceSize 6496, no IV prefix
    assert crypto.aes_decrypt(session, ciphertext) == xml
    # another key: garbage, whose padding is wrong (or, one time in a few hundred, happens to look right)
    with contextlib.suppress(ValueError):
        assert crypto.aes_decrypt(crypto.new_session_key(), ciphertext) != xml
    with pytest.raises(ValueError):
        crypto.encrypt_symmetric_key(key, b"short")


def test_a_bare_subject_public_key_info_is_read_too(sim: KsefSimulator) -> None:
    """The spec's example certificate for KsefTokenEncryption is an SPKI (MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A...)."""
    spki = sim.private_key().public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    text = crypto.b64(spki)
    assert text.startswith("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A")
    assert crypto.public_key_id(crypto.load_public_key(text)) == crypto.sha256_b64(spki)
    with pytest.raises(ValueError):
        crypto.load_public_key(crypto.b64(b"not a key"))
    with pytest.raises(ValueError):
        crypto.unb64("not base64!")


def test_sha256_b64_is_44_characters() -> None:
    digest = crypto.sha256_b64(b"")
    assert digest == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=" and len(digest) == 44
