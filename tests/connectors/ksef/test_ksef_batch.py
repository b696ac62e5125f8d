"""Batch sessions (sesja-wsadowa.md): the package the connector declares and uploads, a backlog's invoices to
their KSeF numbers and UPOs, per-invoice refusals inside a batch, faults on the uploads and the close, a batch
lost with a restart or never closed in time; and the simulator's own checks of the package. Every API exchange
goes through the spec-validating transport (the storage's part uploads are outside the API: see conftest)."""

from __future__ import annotations

import io
import math
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any

import httpx
import pytest
from ksef_testkit import API_URL, PROBLEM, SELLER, Wired, outgoing, wire
from pydantic import ValidationError

from connectors.ksef import KsefOptions, batch, crypto, mapping, upo
from connectors.ksef.client import KsefUnavailable
from connectors.ksef.einvoicing import SessionKeyUnknown, SessionUnusable
from connectors.ksef.simulator import KsefSimulator
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.invoicing import OutgoingInvoice

Wire = Callable[..., Wired]
PART_BYTES = 8000  # the 25 invoices' archive (~34 kB) in 5 parts


def _invoices(count: int, prefix: str = "FV/B") -> list[OutgoingInvoice]:
    return [outgoing(f"{prefix}{n}/12/2026") for n in range(1, count + 1)]


def _storage_puts(sim: KsefSimulator) -> list[tuple[str, int]]:
    return [(e.path.rsplit("/", 1)[1], e.status) for e in sim.exchanges("PUT", r"^/storage/batch-parts/")]


# --- the connector ------------------------------------------------------------------------------------------


def test_the_declared_package_is_the_uploaded_one(sim: KsefSimulator, wired: Wire) -> None:
    w = wired(batch_part_bytes=2000)
    invoices = _invoices(3)
    session = w.port.open_batch(invoices)
    (opened,) = sim.exchanges("POST", r"^/sessions/batch$")
    body = opened.body
    assert set(body) == {"formCode", "batchFile", "encryption", "offlineMode"} and body["offlineMode"] is False
    assert body["formCode"] == {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"}
    assert set(body["batchFile"]) == {"fileSize", "fileHash", "compressionType", "fileParts"}
    assert body["batchFile"]["compressionType"] == "Zip"
    assert set(body["encryption"]) == {"encryptedSymmetricKey", "initializationVector", "publicKeyId"}
    key_holder = sim.private_key()
    assert body["encryption"]["publicKeyId"] == crypto.public_key_id(key_holder.public_key())
    aes_key = crypto.rsa_decrypt(key_holder, crypto.unb64(body["encryption"]["encryptedSymmetricKey"]))
    session_key = crypto.SessionKey(aes_key, crypto.unb64(body["encryption"]["initializationVector"]))
    assert (len(session_key.key), len(session_key.iv)) == (32, 16)
    answer = opened.response
    assert answer["referenceNumber"] == session and "-SB-" in session
    assert [u["ordinalNumber"] for u in answer["partUploadRequests"]] == [
        p["ordinalNumber"] for p in body["batchFile"]["fileParts"]]
    assert all(u["method"] == "PUT" and "/v2/" not in u["url"] and u["headers"] == {"x-ms-blob-type": "BlockBlob"}
               for u in answer["partUploadRequests"])

    w.port.finish_batch(session)
    uploads = sim.sessions[session].batch.uploads  # type: ignore[union-attr]
    parts = body["batchFile"]["fileParts"]
    assert [p["ordinalNumber"] for p in parts] == list(range(1, len(parts) + 1)) == sorted(uploads)
    plain = []
    for part in parts:
        encrypted = uploads[part["ordinalNumber"]]
        # each part's declared size and hash are the ENCRYPTED part's: base64 SHA-256 of the raw ciphertext
        assert (part["fileSize"], part["fileHash"]) == (len(encrypted), crypto.sha256_b64(encrypted))
        chunk = crypto.aes_decrypt(session_key, encrypted)
        assert len(chunk) <= 2000 and len(encrypted) == (len(chunk) // 16 + 1) * 16  # PKCS#7, no IV prefix
        plain.append(chunk)
    archive = b"".join(plain)
    # the whole archive's size and hash are the UNENCRYPTED archive's
    assert (body["batchFile"]["fileSize"], body["batchFile"]["fileHash"]) == (len(archive), crypto.sha256_b64(archive))
    assert len(parts) == math.ceil(len(archive) / 2000) > 1
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        assert zipped.namelist() == ["FV_B1_12_2026.xml", "FV_B2_12_2026.xml", "FV_B3_12_2026.xml"]
        assert [zipped.read(name) for name in zipped.namelist()] == [i.xml for i in invoices]
    # the storage got the parts without a bearer (conftest checks each) and answered 201; the API calls: the
    # opening and one close
    assert [status for _, _, status in w.storage] == [201] * len(parts)
    assert [(m, p[3:]) for m, p, _ in w.checked if p.startswith("/v2/sessions/batch")] == [
        ("POST", "/sessions/batch"), ("POST", f"/sessions/batch/{session}/close")]
    assert not w.port.has_batch(session)


def test_a_backlog_of_25_invoices_in_five_parts(sim: KsefSimulator, wired: Wire) -> None:
    w = wired(batch_part_bytes=PART_BYTES)
    port = w.port
    invoices = _invoices(25)
    session = port.open_batch(invoices)
    assert port.has_batch(session)
    status = port.session_status(session)
    assert (status.code, status.description, status.phase) == (100, "Sesja wsadowa rozpoczęta", "open")
    assert port.find_sent(session) == []  # KSeF looks at nothing before the close
    port.finish_batch(session)
    assert len(sim.sessions[session].batch.parts) == 5  # type: ignore[union-attr]
    first = port.session_status(session)
    assert (first.code, first.phase) == (150, "processing")
    done = port.session_status(session)
    assert (done.code, done.phase, done.invoice_count, done.successful, done.failed) == (200, "done", 25, 25, 0)
    assert len(done.upo_pages) == 1
    found = port.find_sent(session)
    assert [f.sha256 for f in found] == [i.sha256 for i in invoices]
    assert [f.invoice_number for f in found] == [i.key for i in invoices]
    assert all(f.status == "accepted" and f.ksef_number and crypto.ksef_number_valid(f.ksef_number) for f in found)
    assert len({f.ksef_number for f in found}) == 25
    for sent in (found[0], found[-1]):
        (document,) = upo.documents(upo.check(port.upo(session, sent.reference)))
        assert (document["NumerKSeFDokumentu"], document["SkrotDokumentu"]) == (sent.ksef_number, sent.sha256)
        assert port.invoice_status(session, sent.reference).ksef_number == sent.ksef_number
    # a batch's invoices are accepted as of the session's opening (automatyczne-okreslanie-trybu-offline.md)
    assert {i.invoicing_date for i in sim.sessions[session].invoices} == {sim.sessions[session].created}
    assert [i.file_name for i in sim.sessions[session].invoices][:2] == ["FV_B1_12_2026.xml", "FV_B2_12_2026.xml"]
    assert len(sim.exchanges("POST", r"^/auth/ksef-token$")) == 1


def test_a_duplicate_inside_a_batch_is_440_naming_the_original(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    online = port.open_session()
    earlier = port.invoice_status(online, port.send(online, outgoing("FV/D0/12/2026")))
    twin = outgoing("FV/D1/12/2026", issue_date=date(2026, 3, 1))  # another XML, the same seller/kind/P_2
    invoices = [outgoing("FV/D0/12/2026", issue_date=date(2026, 3, 2)), outgoing("FV/D1/12/2026"), twin]
    session = port.open_batch(invoices)
    port.finish_batch(session)
    sim.finish_verification()
    again, original, duplicate = port.find_sent(session)
    assert (again.status, again.code) == ("rejected", 440)
    assert mapping.original_ksef_number(again) == earlier.ksef_number
    assert f"originalSessionReferenceNumber: {online}" in again.details
    assert original.status == "accepted" and original.sha256 == invoices[1].sha256
    assert (duplicate.status, duplicate.code, duplicate.ksef_number, duplicate.sha256) == (
        "rejected", 440, None, twin.sha256)
    assert mapping.original_ksef_number(duplicate) == original.ksef_number
    assert f"originalSessionReferenceNumber: {session}" in duplicate.details
    status = port.session_status(session)
    assert (status.code, status.successful, status.failed) == (200, 1, 2)


def test_an_invalid_invoice_is_refused_alone(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    invoices = [outgoing("FV/S1/12/2026"), outgoing("FV/S2/12/2026", total="dużo"), outgoing("FV/S3/12/2026")]
    session = port.open_batch(invoices)
    port.finish_batch(session)
    sim.finish_verification()
    good, bad, other = port.find_sent(session)
    assert (good.status, other.status) == ("accepted", "accepted")
    assert (bad.status, bad.code, bad.sha256, bad.ksef_number) == ("rejected", 430, invoices[1].sha256, None)
    assert any("P_15" in detail for detail in bad.details), bad.details
    with pytest.raises(PermanentError, match="refused the invoice"):
        port.upo(session, bad.reference)
    status = port.session_status(session)
    assert (status.code, status.phase, status.successful, status.failed) == (200, "done", 2, 1)


def test_a_batch_of_invalid_invoices_only_is_done_with_445(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_batch([outgoing("FV/Z1/12/2026", total="x"), outgoing("FV/Z2/12/2026", seller="1111111111")])
    port.finish_batch(session)
    sim.finish_verification()
    status = port.session_status(session)
    assert (status.code, status.phase, status.failed) == (445, "done", 2)
    assert [f.code for f in port.find_sent(session)] == [430, 410]


def test_a_5xx_on_a_part_upload_is_retried(sim: KsefSimulator, wired: Wire) -> None:
    port = wired(batch_part_bytes=PART_BYTES).port
    session = port.open_batch(_invoices(25))
    sim.fail_next(r"^/storage/batch-parts/[^/]+/2$", 503, method="PUT")
    sim.lose_next(r"^/storage/batch-parts/[^/]+/4$", method="PUT")  # stored, then a 500: stored again
    port.finish_batch(session)
    assert _storage_puts(sim) == [("1", 201), ("2", 503), ("2", 201), ("3", 201), ("4", 500), ("4", 201), ("5", 201)]
    sim.finish_verification()
    assert [f.status for f in port.find_sent(session)] == ["accepted"] * 25


def test_a_part_that_keeps_failing_then_finish_again(sim: KsefSimulator, wired: Wire) -> None:
    w = wired(batch_part_bytes=PART_BYTES)
    session = w.port.open_batch(_invoices(25))
    sim.fail_next(r"^/storage/batch-parts/[^/]+/3$", 502, times=3, method="PUT")
    with pytest.raises(KsefUnavailable, match="after 3 attempts"):
        w.port.finish_batch(session)
    assert not sim.exchanges("POST", r"/close$") and w.port.has_batch(session)
    w.port.finish_batch(session)  # parts 1 and 2 are not uploaded again
    assert _storage_puts(sim) == [("1", 201), ("2", 201), ("3", 502), ("3", 502), ("3", 502), ("3", 201),
                                  ("4", 201), ("5", 201)]
    assert w.port.session_status(session).code == 150


def test_a_lost_answer_to_close_then_close_again(sim: KsefSimulator, wired: Wire) -> None:
    w = wired(batch_part_bytes=PART_BYTES)
    invoices = _invoices(25)
    session = w.port.open_batch(invoices)
    sim.lose_next(r"^/sessions/batch/[^/]+/close$")
    with pytest.raises(RetryableError):
        w.port.finish_batch(session)
    assert w.port.has_batch(session)
    w.port.finish_batch(session)  # no part again; KSeF: 21180, closed already
    assert [e.status for e in sim.exchanges("POST", r"/close$")] == [500, 400]
    assert len(_storage_puts(sim)) == 5 and not w.port.has_batch(session)
    sim.finish_verification()
    assert [f.sha256 for f in w.port.find_sent(session)] == [i.sha256 for i in invoices]
    assert len(sim.sessions[session].invoices) == 25


def test_finish_batch_without_its_parts(sim: KsefSimulator, wired: Wire) -> None:
    first = wired().port
    with pytest.raises(SessionKeyUnknown, match="unknown to KSeF"):
        first.finish_batch("20261202-SB-0000000001-0000000000-00")
    opened = first.open_batch(_invoices(2, "FV/R"))
    closed = first.open_batch(_invoices(2, "FV/Q"))
    first.finish_batch(closed)
    restarted = wired().port
    assert not restarted.has_batch(opened)
    with pytest.raises(SessionKeyUnknown, match="status 100") as caught:
        restarted.finish_batch(opened)
    assert isinstance(caught.value, SessionUnusable)
    assert sim.sessions[opened].closed_at is None and not _puts_for(sim, opened)
    restarted.finish_batch(closed)  # its close landed before the restart: nothing left to do
    assert len(sim.exchanges("POST", r"/close$")) == 1


def _puts_for(sim: KsefSimulator, session: str) -> list[Any]:
    return sim.exchanges("PUT", rf"^/storage/batch-parts/{session}/")


def test_a_batch_never_closed_is_cancelled(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    session = port.open_batch(_invoices(2, "FV/E"))
    sim.expire_session(session)
    status = port.session_status(session)
    assert (status.code, status.description, status.details, status.phase) == (
        440, "Sesja anulowana", ("Przekroczono czas wysyłki",), "failed")
    with pytest.raises(SessionUnusable, match=r"part 1 was refused.*HTTP 403"):
        port.finish_batch(session)  # the storage takes nothing any more
    assert not port.has_batch(session) and port.find_sent(session) == []


def test_a_batch_closed_too_late(sim: KsefSimulator, wired: Wire) -> None:
    port = wired(batch_part_bytes=PART_BYTES).port
    session = port.open_batch(_invoices(25))
    sim.fail_next(r"^/sessions/batch/[^/]+/close$", 503)
    with pytest.raises(KsefUnavailable):
        port.finish_batch(session)  # every part is up; the close did not get through
    sim.advance(5 * 20 * 60)  # 20 minutes a part
    with pytest.raises(SessionUnusable, match="21208"):
        port.finish_batch(session)
    assert not port.has_batch(session) and port.session_status(session).phase == "failed"


def test_two_threads_finish_one_batch(sim: KsefSimulator, wired: Wire) -> None:
    port = wired(batch_part_bytes=PART_BYTES).port
    session = port.open_batch(_invoices(25))
    errors: list[BaseException] = []

    def finish() -> None:
        try:
            port.finish_batch(session)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=finish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and len(_storage_puts(sim)) == 5
    assert [e.status for e in sim.exchanges("POST", r"/close$")] == [204]


def test_what_open_batch_refuses_before_sending(sim: KsefSimulator, wired: Wire) -> None:
    port = wired(batch_part_bytes=100, batch_max_invoices=30).port
    invoice = outgoing("FV/G1/12/2026")
    cases: list[tuple[Sequence[OutgoingInvoice], str]] = [
        ([], "no invoices"),
        (_invoices(31, "FV/M"), "over the 30"),
        ([invoice, outgoing("FV/G2/12/2026"), invoice], "same document as invoice FV/G1/12/2026"),
        ([OutgoingInvoice(invoice.key, invoice.xml + b" ", invoice.sha256)], "not that of its XML"),
        (_invoices(25), "over KSeF's 50"),
    ]
    for invoices, message in cases:
        with pytest.raises(PermanentError, match=message):
            port.open_batch(invoices)
    assert not sim.exchanges("POST", r"^/sessions/batch")


def test_an_emergency_key_rotation_on_open(sim: KsefSimulator, wired: Wire) -> None:
    port = wired().port
    port.open_session()
    sim.rotate_keys(emergency=True)
    session = port.open_batch(_invoices(1, "FV/K"))
    assert [e.status for e in sim.exchanges("POST", r"^/sessions/batch$")] == [400, 201]
    port.finish_batch(session)
    sim.finish_verification()
    assert port.session_status(session).code == 200


def test_file_names_and_parts() -> None:
    names = batch.file_names(["FV/1/12/2026", "FV_1_12_2026", "fv/1/12/2026", "", "..", "FV/ŁÓDŹ 1",
                              "A" * 300, "A" * 299 + "B"])
    assert names[:6] == ["FV_1_12_2026.xml", "FV_1_12_2026-2.xml", "fv_1_12_2026-3.xml", "invoice.xml",
                         "invoice-2.xml", "FV_D_1.xml"]
    assert len({n.lower() for n in names}) == len(names) and all(len(n) <= 128 for n in names)
    assert names[6].startswith("A" * 90 + "-") and names[6] != names[7]
    assert [len(p) for p in batch.split(b"x" * 10, 4)] == [4, 4, 2]
    assert [len(p) for p in batch.split(b"x" * 8, 4)] == [4, 4]
    assert batch.zip_archive([("a.xml", b"<a/>")]) == batch.zip_archive([("a.xml", b"<a/>")])
    with pytest.raises(batch.BatchTooLarge):
        batch.split(b"x" * 51, 1)
    with pytest.raises(ValidationError):
        KsefOptions.model_validate({"nip": SELLER, "token": "t", "batch_part_bytes": 100_000_001})


@pytest.mark.parametrize(("code", "phase"), [(100, "open"), (150, "processing"), (170, "processing"),
                                             (200, "done"), (445, "done"), (405, "failed"), (415, "failed"),
                                             (420, "failed"), (430, "failed"), (435, "failed"), (440, "failed"),
                                             (500, "failed"), (120, "processing")])
def test_session_phases(code: int, phase: str) -> None:
    status = mapping.session_status({"status": {"code": code, "description": "x"}, "dateCreated": None,
                                     "dateUpdated": None})
    assert status.phase == phase


# --- the simulator, spoken to directly ----------------------------------------------------------------------


@pytest.fixture
def storage(sim: KsefSimulator, validated: Callable[[httpx.BaseTransport], httpx.BaseTransport]
            ) -> Iterator[httpx.Client]:
    with httpx.Client(transport=validated(sim.transport())) as client:
        yield client


class Batch:
    """A package made by hand, to break one thing at a time."""

    def __init__(self, sim: KsefSimulator, files: list[tuple[str, bytes]], *, max_part: int = 10**8,
                 archive: bytes | None = None, compression: str = "Zip", key: crypto.SessionKey | None = None):
        self.key = key or crypto.new_session_key()
        self.archive = archive if archive is not None else batch.zip_archive(files)
        self.parts = [crypto.aes_encrypt(self.key, chunk) for chunk in batch.split(self.archive, max_part)]
        public = sim.private_key().public_key()
        self.body = mapping.open_batch_request(
            crypto.encrypt_symmetric_key(public, self.key.key), self.key.iv, crypto.public_key_id(public),
            archive_size=len(self.archive), archive_sha256=crypto.sha256_b64(self.archive),
            parts=[(n, len(p), crypto.sha256_b64(p)) for n, p in enumerate(self.parts, start=1)])
        self.body["batchFile"]["compressionType"] = compression
        self.reference = ""
        self.uploads: list[dict[str, Any]] = []

    def open(self, api: httpx.Client, token: str) -> httpx.Response:
        answer = api.post("/sessions/batch", json=self.body, headers={"Authorization": f"Bearer {token}"})
        if answer.status_code == 201:
            self.reference, self.uploads = answer.json()["referenceNumber"], answer.json()["partUploadRequests"]
        return answer

    def put(self, storage: httpx.Client, n: int, content: bytes | None = None, **headers: str) -> httpx.Response:
        upload = self.uploads[n - 1]
        return storage.request(upload["method"], upload["url"], headers={**upload["headers"], **headers},
                               content=self.parts[n - 1] if content is None else content)

    def close(self, api: httpx.Client, token: str) -> httpx.Response:
        return api.post(f"/sessions/batch/{self.reference}/close", headers={"Authorization": f"Bearer {token}"})

    def status(self, api: httpx.Client, token: str) -> dict[str, Any]:
        answer = api.get(f"/sessions/{self.reference}", headers={"Authorization": f"Bearer {token}"})
        return dict(answer.json()["status"])


def _code(answer: httpx.Response) -> int:
    return int(answer.json()["errors"][0]["code"])


@pytest.fixture
def token(wired: Wire) -> str:
    return str(wired().port._client.access_token())


def _files(n: int = 3) -> list[tuple[str, bytes]]:
    return [(f"f{k}.xml", outgoing(f"FV/X{k}/12/2026").xml) for k in range(1, n + 1)]


def test_sim_checks_the_declaration(sim: KsefSimulator, api: httpx.Client, token: str) -> None:
    good = Batch(sim, _files(), max_part=3000)
    fifty_one = Batch(sim, _files())
    fifty_one.body["batchFile"]["fileParts"] = [dict(fifty_one.body["batchFile"]["fileParts"][0], ordinalNumber=n)
                                                for n in range(1, 52)]
    with httpx.Client(base_url=API_URL, transport=sim.transport(), headers=PROBLEM) as raw:  # the spec: maxItems 50
        answer = raw.post("/sessions/batch", json=fifty_one.body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400 and _code(answer) == 21161
    unpadded = Batch(sim, _files())
    unpadded.body["batchFile"]["fileParts"][0]["fileSize"] += 1
    assert _code(unpadded.open(api, token)) == 21157
    twice = Batch(sim, _files(), max_part=3000)
    twice.body["batchFile"]["fileParts"][1]["ordinalNumber"] = 1
    assert _code(twice.open(api, token)) == 21405
    other_form = Batch(sim, _files())
    other_form.body["formCode"] = {"systemCode": "FA (2)", "schemaVersion": "1-0E", "value": "FA"}
    assert _code(other_form.open(api, token)) == 21405
    assert good.open(api, token).status_code == 201 and len(good.uploads) == len(good.parts) > 1
    online_close = api.post(f"/sessions/online/{good.reference}/close", headers={"Authorization": f"Bearer {token}"})
    assert _code(online_close) == 21173  # a batch session is closed by its own route


def test_sim_storage_and_close_checks(sim: KsefSimulator, api: httpx.Client, storage: httpx.Client,
                                      token: str) -> None:
    b = Batch(sim, _files(), max_part=3000)
    b.open(api, token)
    assert b.put(storage, 1, content=b.parts[0][:-16]).status_code == 400  # not the declared size
    assert b.put(storage, 1, content=bytes(len(b.parts[0]))).status_code == 400  # not the declared hash
    upload = b.uploads[0]
    assert storage.put(upload["url"], content=b.parts[0]).status_code == 400  # without x-ms-blob-type
    assert storage.put(upload["url"].replace("sig=", "sig=x"), headers=upload["headers"],
                       content=b.parts[0]).status_code == 403
    with httpx.Client(transport=sim.transport()) as unchecked:  # conftest refuses a bearer to the storage
        assert unchecked.put(upload["url"], headers={**upload["headers"], "Authorization": f"Bearer {token}"},
                             content=b.parts[0]).status_code == 401
    assert b.put(storage, 1).status_code == 201
    assert b.put(storage, 1).status_code == 201  # again: the same blob
    missing = b.close(api, token)
    assert _code(missing) == 21205 and missing.json()["errors"][0]["details"] == [
        "Nie przesłano zadeklarowanej '2' części pliku."]
    for n in range(2, len(b.parts) + 1):
        assert b.put(storage, n).status_code == 201
    assert b.close(api, token).status_code == 204
    assert _code(b.close(api, token)) == 21180
    assert b.put(storage, 1).status_code == 403  # closed: nothing more is written
    lenient = Batch(sim, _files())
    lenient.open(api, token)
    sim.check_part_uploads = False
    lenient.put(storage, 1, content=lenient.parts[0] + bytes(16))
    assert _code(lenient.close(api, token)) == 21157


def _closed(b: Batch, api: httpx.Client, storage: httpx.Client, token: str) -> dict[str, Any]:
    assert b.open(api, token).status_code == 201
    for n in range(1, len(b.parts) + 1):
        assert b.put(storage, n).status_code == 201
    assert b.close(api, token).status_code == 204
    return b.status(api, token)


def test_sim_package_failures(sim: KsefSimulator, api: httpx.Client, storage: httpx.Client, token: str) -> None:
    sim.check_part_uploads = False
    wrong_archive = Batch(sim, _files())
    wrong_archive.body["batchFile"]["fileHash"] = crypto.sha256_b64(b"another archive")
    assert _closed(wrong_archive, api, storage, token)["code"] == 405
    not_a_zip = Batch(sim, [], archive=b"not a zip archive at all")
    assert _closed(not_a_zip, api, storage, token) == {
        "code": 430, "description": "Błąd dekompresji pierwotnego archiwum"}
    wrong_key = Batch(sim, _files(), key=crypto.SessionKey(bytes(32), bytes(16)))  # fixed: a bad padding
    other = crypto.SessionKey(b"\x07" * 32, bytes(16))
    wrong_key.parts = [crypto.aes_encrypt(other, crypto.aes_decrypt(wrong_key.key, p)) for p in wrong_key.parts]
    wrong_key.body["batchFile"]["fileParts"] = [{"ordinalNumber": n, "fileSize": len(p),
                                                 "fileHash": crypto.sha256_b64(p)}
                                                for n, p in enumerate(wrong_key.parts, start=1)]
    assert _closed(wrong_key, api, storage, token) == {
        "code": 435, "description": "Błąd odszyfrowania zaszyfrowanych części archiwum"}
    bad_key = Batch(sim, _files())
    bad_key.body["encryption"]["encryptedSymmetricKey"] = crypto.b64(bytes(256))  # no AES key inside
    assert _closed(bad_key, api, storage, token) == {"code": 415, "description": "Błąd odszyfrowania dostarczonego "
                                                     "klucza"}
    sim.max_invoices = 2
    too_many = Batch(sim, _files(3))
    assert _closed(too_many, api, storage, token)["code"] == 420
    empty = Batch(sim, [])
    assert _closed(empty, api, storage, token) == {"code": 440, "description": "Sesja anulowana",
                                                   "details": ["Nie przesłano faktur"]}


def test_sim_takes_a_tar_gz(sim: KsefSimulator, api: httpx.Client, storage: httpx.Client, token: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in _files(2):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    b = Batch(sim, [], archive=buffer.getvalue(), compression="TarGz")
    assert _closed(b, api, storage, token)["code"] == 150
    sim.finish_verification()
    assert b.status(api, token)["code"] == 200
    assert [i.file_name for i in sim.sessions[b.reference].invoices] == ["f1.xml", "f2.xml"]


def test_a_batch_over_a_real_loopback_socket(sim: KsefSimulator) -> None:
    """The demo's way: the part addresses name the simulator's own host and port, outside /v2."""
    base = sim.serve()
    try:
        w = wire(sim, None, api_url=f"{base}/v2", batch_part_bytes=PART_BYTES)  # type: ignore[arg-type]
        invoices = _invoices(12, "FV/L")
        session = w.port.open_batch(invoices)
        (opened,) = sim.exchanges("POST", r"^/sessions/batch$")
        assert all(u["url"].startswith(f"{base}/storage/batch-parts/") for u in opened.response["partUploadRequests"])
        w.port.finish_batch(session)
        sim.finish_verification()
        assert [f.sha256 for f in w.port.find_sent(session) if f.status == "accepted"] == [i.sha256 for i in invoices]
        w.port.close()
    finally:
        sim.stop()
