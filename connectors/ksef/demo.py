"""`hub demo` hook: the KSeF simulator served on loopback, reached by the connector over real HTTP (its
``api_url`` points there), exactly as the hub builds it; the demo's seller holds the simulator's token.

For the offline part: ``offline_certificate`` writes a certificate of type Offline for the demo's seller (a
self-signed EC P-256 one standing for what KSeF's /certificates enrollment issues: the simulator verifies no
KOD II), and ``unavailable`` makes the simulator answer 503 to every session call until it is called again
with False."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.ksef.simulator import DEFAULT_NIP, DEFAULT_TOKEN, KsefSimulator


class KsefDemo:
    name = "ksef"
    label = "KSeF (simulator)"
    seller_nip = DEFAULT_NIP

    def __init__(self) -> None:
        self.sim = KsefSimulator()

    def start(self) -> dict[str, Any]:
        url = self.sim.serve()
        # the simulator's own limits: the demo does not wait out KSeF's production quota
        return {"api_url": url + "/v2", "nip": DEFAULT_NIP, "token": DEFAULT_TOKEN, "rate_limit_per_minute": 6000}

    def accepted(self) -> int:
        return len(self.sim.accepted)

    def requests(self) -> int:
        return len(self.sim.log)

    def stop(self) -> None:
        self.sim.stop()

    def unavailable(self, down: bool) -> None:
        """KSeF unreachable (503 to every POST of a session) or back."""
        if down:
            self.sim.fail_next("/sessions", status=503, times=1_000_000, method="POST")
        else:
            self.sim.clear_faults()

    def offline_certificate(self, folder: Path) -> dict[str, str]:
        """A demo certificate of type Offline and its key in ``folder``: the [invoicing.offline_certificate]
        options."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Demo Sp. z o.o. (KSeF Offline, demo)"),
                          x509.NameAttribute(NameOID.SERIAL_NUMBER, f"VATPL-{DEFAULT_NIP}")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=365)).sign(key, hashes.SHA256()))
        folder.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = folder / "ksef-offline.crt", folder / "ksef-offline.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)
        return {"certificate": str(cert_path), "private_key": str(key_path)}
