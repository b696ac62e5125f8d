"""An in-memory DPDServices (object interface, SOAP 1.1) for tests and the demo.

A WSGI app: in-process through ``sim.adapter()`` (a ``requests`` adapter, which zeep's transport uses, with
the transport-level faults), or on a loopback port with ``serve()`` / ``stop()``. Built from DPD's own
material only:

* the vendored WSDL/XSD (connectors/carriers/dpd/wsdl, = shared/specs/carriers/dpd_pl): every request
  body is validated against the XSD, and every answer is built to it (the tests validate each answer the
  simulator gave against the XSD too). Local elements are unqualified, as the XSD has no
  elementFormDefault; the envelope looks like the examples in DPD's client documentation v2.87 ("S:" and
  "ns2:" prefixes).
* DPD's client documentation v2.87 (the PDF shipped with that WSDL; the section is named at each rule) and
  its "Error codes.xlsx" (ErrorId / ErrorCode / message of the validation answers).

Behaviour:

* 1.2.1 Permissions: no authDataV1 -> fault "AuthData is null"; a wrong login or password -> fault
  "Login failed". Faults are SOAP 1.1 faults (HTTP 500) whose detail is the WSDL's DPDServiceException
  {message}.
* A missing top-level parameter is answered with the documented fault: "Parameter openUMLV cannot be null"
  (generatePackagesNumbersV4, "Validation", sic), "One of '(Package)' is expected." (no packages),
  "Parameter dpdServicesParamsV1 cannot be null" (labels, protocol). For packagesPickupCallV4 and
  getCourierOrderAvailabilityV1 the text is by analogy (u): "Parameter dpdPickupCallParamsV3 cannot be
  null", "Parameter senderPlaceV1 cannot be null". A request that breaks the XSD gets a Client fault (u:
  the text is lxml's).
* generatePackagesNumbersV4: the package/parcel validation of "For generatePackagesNumbersV1: ... Field
  required?" tables and Error codes.xlsx (required receiver address/city/postal code/name-or-company,
  postal codes of 5 digits for PL without the dash -> INCORRECT_RECEIVER_POSTAL_CODE 1502 /
  INCORRECT_SENDER_POSTAL_CODE 1506, field sizes 1056-1070, weight 0.01-50 kg, sides up to 250 cm, COD in
  PLN 0.01-15000 with format 0.00, declared value up to 500 000, dpdPickup needs a pudo and at most 20 kg,
  no guarantee with dpdPickup). The package and parcel ``reference`` are unique search keys: a second use
  is answered DUPLICATED_PACKAGE_REFERENCE / DUPLICATED_PARCEL_REFERENCE (generatePackagesNumbersV2 "Query
  results"; 1.4 Good practice). langCode other than PL -> UNSUPPORTED_LANG_CODE. ALL_OR_NOTHING books
  nothing when a package fails; the other packages are then NOT_PROCESSED (u). Waybills look like the
  demo's ("0000001052539S").
* generateSpedLabelsV4 / generateProtocolV2: packages by sessionId, packageId, reference (a package without
  one has the search key "##" + id, as in the documentation's example) or parcels; unknown ones NOT_FOUND.
  PDF (one page per parcel) or ZPL (one ^XA...^XZ per parcel, LBL_PRINTER only: "to obtain ZPL or EPL format
  outputDocPageFormatV1 = LBL_PRINTER must also be set up"; otherwise NOT_PROCESSED (u)). The protocol needs
  pickupAddress.fid equal to the packages' sender fid, else INCORRECT_PICKUP_ADDRESS_FID
  (generateProtocolV1, "Validation"); the same packages again get the same documentId (u).
* getCourierOrderAvailabilityV1: the documentation's example answer (an empty <ranges/>, then 14:00-16:00,
  15:00-17:00, 17:00-19:00, offset 120), or what ``availability`` sets for a postal code; a zipCode that is
  not digits ("ZipCode Integer value") -> status WRONG_POSTAL_PATTERN (u: findPostalCodeV1's wording).
* packagesPickupCallV4: INSERT checks the fields "packagesPickupCallV2, Validation" marks required and
  answers orderNumber + checkSum (the V3 example's shapes); CANCEL needs orderNumber and checkSum
  (packagesPickupCallV3, CANCEL). The status strings of a refusal are not documented for V2+ (u): a missing
  field -> INCORRECT_DATA with errorDetails {code FIELD_REQUIRED, fields}; CANCEL of an unknown, already
  cancelled or wrong-checksum order -> NOT_FOUND (statusPCREnumV1's "object not found"); CANCEL of an order
  ``close_order`` closed -> NOT_PROCESSED.
* The other 15 operations answer the fault "operation not simulated".

Faults on demand (``inject(operation, *faults)``, one per matching request, in order; operation "*" matches
any): "503" (a gateway's HTML page, nothing applied), "502-after-apply" (applied, then a gateway's 502),
"transient-fault" (DPD's "Unexpected error during executing webserwice. Try again later", nothing applied),
"malformed" (applied, then a truncated envelope), "entity-bomb" (applied, then a billion-laughs DOCTYPE),
"external-entity" (applied, then an entity reading file:///etc/passwd), "slow" (applied, answered after
``slow_seconds``: the in-process adapter raises requests' ReadTimeout when that exceeds the caller's read
timeout; served, it really sleeps), "label-not-ready" (labels: session NOT_FOUND, no document), and at the
transport (in-process only) "timeout" (never arrives: ConnectTimeout) and "lost" (applied, the answer lost:
ReadTimeout). DPD answers synchronously, so there is no asynchronous confirmation to slow down.
"""

from __future__ import annotations

import io
import random
import re
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

import requests
from lxml import etree
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from connectors.simserver import LoopbackServer

NS = "http://dpdservices.dpd.com.pl/"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
XSD = Path(__file__).parent / "wsdl" / "DPDPackageXmlServices.xsd"
PATH = "/DPDPackageObjServicesService/DPDPackageObjServices"
LOGIN, PASSWORD, MASTER_FID = "test", "thetu4Ee", 1495  # DPD's published demo account ("Service addresses")
SIMULATED = frozenset({"generatePackagesNumbersV4", "generateSpedLabelsV4", "generateProtocolV2",
                       "getCourierOrderAvailabilityV1", "packagesPickupCallV4"})
# getCourierOrderAvailabilityV1's example answer (documentation v2.87, 1.2.3.1)
DEFAULT_RANGES: tuple[tuple[str, int], ...] = (("14:00-16:00", 120), ("15:00-17:00", 120), ("17:00-19:00", 120))
BODY_FAULTS = frozenset({"503", "502-after-apply", "transient-fault", "malformed", "entity-bomb", "external-entity",
                         "slow", "label-not-ready"})
TRANSPORT_FAULTS = frozenset({"timeout", "lost"})
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_OP_IN_BODY = re.compile(rb"<(?:[\w.-]+:)?Body[^>]*>\s*<(?:[\w.-]+:)?([A-Za-z0-9]+)")
StartResponse = Callable[[str, list[tuple[str, str]]], Any]

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE S:Envelope [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>
<ns2:%(op)sResponse xmlns:ns2="http://dpdservices.dpd.com.pl/"><return><Status>&lol9;</Status></return>
</ns2:%(op)sResponse></S:Body></S:Envelope>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE S:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>
<ns2:%(op)sResponse xmlns:ns2="http://dpdservices.dpd.com.pl/"><return><Status>&xxe;</Status></return>
</ns2:%(op)sResponse></S:Body></S:Envelope>"""


@cache
def schema() -> etree.XMLSchema:
    """The vendored XSD as an lxml schema (requests and answers are checked against it)."""
    return etree.XMLSchema(etree.parse(str(XSD), parser=_SAFE_PARSER))


def validate_element(element: etree._Element) -> list[str]:
    """What in ``element`` (a global element of the XSD, e.g. an operation's body) breaks the XSD."""
    doc = etree.ElementTree(etree.fromstring(etree.tostring(element), parser=_SAFE_PARSER))
    validator = schema()
    if validator.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in validator.error_log]


# --- state ----------------------------------------------------------------------------------------------

@dataclass
class SimParcel:
    parcel_id: int
    reference: str  # the user's, or "##" + parcel id
    waybill: str
    weight: Decimal


@dataclass
class SimPackage:
    package_id: int
    session_id: int
    reference: str  # the user's, or "##" + package id
    session_type: str
    sender_fid: int | None
    receiver: dict[str, str]
    services: dict[str, Any]
    parcels: list[SimParcel]
    payer_type: str


@dataclass
class SimOrder:
    order_number: str
    check_sum: int
    params: dict[str, Any]
    state: str = "active"  # active | cancelled | closed


@dataclass
class Exchange:
    """One request as the simulator saw it (status 0: it never got there)."""

    operation: str
    request: bytes
    status: int = 0
    response: bytes = b""
    fault: str | None = None
    applied: bool = False


class _Fault(Exception):
    def __init__(self, message: str, code: str = "S:Server", detail: str = "DPDServiceException"):
        super().__init__(message)
        self.message, self.code, self.detail = message, code, detail


# --- small XML helpers ----------------------------------------------------------------------------------

def _el(tag: str, *children: etree._Element | None, text: object = None) -> etree._Element:
    node = etree.Element(tag)
    if text is not None:
        node.text = str(text)
    for child in children:
        if child is not None:
            node.append(child)
    return node


def _opt(tag: str, text: object) -> etree._Element | None:
    return None if text is None or text == "" else _el(tag, text=text)


def _text(node: etree._Element | None, path: str) -> str | None:
    if node is None:
        return None
    found = node.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _envelope(body: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"S": SOAP})
    etree.SubElement(env, f"{{{SOAP}}}Body").append(body)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _response(op: str, ret: etree._Element) -> etree._Element:
    wrapper = etree.Element(f"{{{NS}}}{op}Response", nsmap={"ns2": NS})
    ret.tag = "return"
    wrapper.append(ret)
    return wrapper


def fault_detail(message: str, detail: str = "DPDServiceException") -> etree._Element:
    node = etree.Element(f"{{{NS}}}{detail}", nsmap={"ns2": NS})
    node.append(_el("message", text=message))
    return node


def _fault_envelope(fault: _Fault) -> bytes:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"S": SOAP})
    body = etree.SubElement(env, f"{{{SOAP}}}Body")
    node = etree.SubElement(body, f"{{{SOAP}}}Fault")
    _sub = etree.SubElement
    _sub(node, "faultcode").text = fault.code
    _sub(node, "faultstring").text = fault.message
    _sub(node, "detail").append(fault_detail(fault.message, fault.detail))
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def minimal_pdf(pages: list[list[str]]) -> bytes:
    """A small valid PDF, one page per entry, each line of text drawn in Helvetica."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    font_ref = 3
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for lines in pages:
        text = "BT /F1 11 Tf 40 800 Td 14 TL " + " ".join(
            "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '" for line in lines) + " ET"
        stream = text.encode("latin-1", "replace")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        content_ref = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 %d 0 R >> >> "
                       b"/Contents %d 0 R >>" % (font_ref, content_ref))
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


# --- the simulator --------------------------------------------------------------------------------------

class DpdSimulator:
    """DPDServices for one account. Read its state from ``packages``, ``orders`` and ``log``."""

    def __init__(self, login: str = LOGIN, password: str = PASSWORD, master_fid: int = MASTER_FID, *,
                 seed: int = 0, slow_seconds: float = 5.0):
        self.login = login
        self.password = password
        self.master_fid = master_fid
        self.slow_seconds = slow_seconds
        self.packages: dict[int, SimPackage] = {}
        self.orders: dict[str, SimOrder] = {}
        self.protocols: dict[frozenset[int], tuple[str, bytes]] = {}
        self.availability: dict[str, list[tuple[str, int]]] = {}  # zipCode -> ranges (default DEFAULT_RANGES)
        self.log: list[Exchange] = []
        self._faults: dict[str, list[str]] = {}
        self._rng = random.Random(seed)
        self._next = {"package": 640600, "parcel": 1093700, "session": 610400, "waybill": 1052600,
                      "document": 274900, "order": 1}
        self._lock = threading.RLock()
        self._loopback = LoopbackServer(self, "dpd-simulator")

    # --- inspection and setup -------------------------------------------------------------------------

    def inject(self, operation: str, *faults: str) -> None:
        """Queue faults for the next requests to ``operation`` ("*": any operation)."""
        for fault in faults:
            if fault not in BODY_FAULTS | TRANSPORT_FAULTS:
                raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.setdefault(operation, []).extend(faults)

    def package_by_reference(self, reference: str) -> SimPackage | None:
        return next((p for p in self.packages.values() if p.reference == reference), None)

    def close_order(self, order_number: str) -> None:
        """The courier is on the way: the order can no longer be cancelled."""
        self.orders[order_number].state = "closed"

    def calls(self, operation: str) -> list[Exchange]:
        return [e for e in self.log if e.operation == operation]

    def adapter(self) -> SimulatorAdapter:
        return SimulatorAdapter(self)

    def serve(self) -> str:
        """Serve on a loopback port; returns the service address."""
        return self._loopback.start() + PATH

    def stop(self) -> None:
        self._loopback.stop()

    def _take_fault(self, operation: str, kinds: frozenset[str]) -> str | None:
        with self._lock:
            for key in (operation, "*"):
                queue = self._faults.get(key) or []
                if queue and queue[0] in kinds:
                    return queue.pop(0)
        return None

    def _new(self, kind: str) -> int:
        with self._lock:
            self._next[kind] += 1
            return self._next[kind]

    # --- WSGI -----------------------------------------------------------------------------------------

    def __call__(self, environ: Mapping[str, Any], start_response: StartResponse) -> Iterator[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        operation = operation_of(raw)
        exchange = Exchange(operation=operation, request=raw)
        with self._lock:
            self.log.append(exchange)
        status, body, content_type = self._handle(environ, raw, operation, exchange)
        exchange.status, exchange.response = status, body
        reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
                  502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Status")
        start_response(f"{status} {reason}", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return iter([body])

    def _handle(self, environ: Mapping[str, Any], raw: bytes, operation: str,
                exchange: Exchange) -> tuple[int, bytes, str]:
        xml = "text/xml;charset=utf-8"
        if environ.get("PATH_INFO") != PATH:
            return 404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html"
        if environ.get("REQUEST_METHOD", "").upper() != "POST":
            return 405, b"<html><body><h1>405 Method Not Allowed</h1></body></html>", "text/html"
        fault = self._take_fault(operation, BODY_FAULTS)
        exchange.fault = fault
        if fault == "503":
            return 503, b"<html><body><h1>503 Service Unavailable</h1></body></html>", "text/html"
        if fault == "transient-fault":
            return 500, _fault_envelope(_Fault("Unexpected error during executing webserwice. Try again later")), xml
        try:
            answer = self._dispatch(raw, operation, label_not_ready=fault == "label-not-ready")
            exchange.applied = True
            status, body = 200, _envelope(answer)
        except _Fault as exc:
            status, body = 500, _fault_envelope(exc)
        if fault == "502-after-apply":
            return 502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"
        if fault == "malformed":
            return 200, body[: max(40, len(body) // 2)], xml
        if fault == "entity-bomb":
            return 200, BILLION_LAUGHS % {b"op": operation.encode()}, xml
        if fault == "external-entity":
            return 200, EXTERNAL_ENTITY % {b"op": operation.encode()}, xml
        if fault == "slow":
            if environ.get("dpdsim.in_process"):
                environ["dpdsim.delay"].append(self.slow_seconds)  # the adapter decides against its timeout
            else:
                time.sleep(self.slow_seconds)
        return status, body, xml

    def _dispatch(self, raw: bytes, operation: str, *, label_not_ready: bool) -> etree._Element:
        try:
            root = etree.fromstring(raw, parser=_SAFE_PARSER)
        except etree.XMLSyntaxError as exc:
            raise _Fault(f"Couldn't parse the SOAP message: {exc}", "S:Client") from None
        if root.getroottree().docinfo.doctype:
            raise _Fault("DOCTYPE is not allowed", "S:Client")
        body = root.find(f"{{{SOAP}}}Body")
        if root.tag != f"{{{SOAP}}}Envelope" or body is None or len(body) == 0:
            raise _Fault("Not a SOAP 1.1 envelope with a body", "S:Client")
        request = body[0]
        if etree.QName(request).namespace != NS:
            raise _Fault(f"Cannot find dispatch method for {request.tag}", "S:Client")
        errors = validate_element(request)
        if errors:
            raise _Fault(f"Schema validation failed: {errors[0]}", "S:Client")
        self._authenticate(request)
        if operation not in SIMULATED:
            raise _Fault(f"operation {operation} not simulated")
        with self._lock:
            if operation == "generatePackagesNumbersV4":
                ret = self._generate(request)
            elif operation == "generateSpedLabelsV4":
                ret = self._labels(request, not_ready=label_not_ready)
            elif operation == "generateProtocolV2":
                ret = self._protocol(request)
            elif operation == "getCourierOrderAvailabilityV1":
                ret = self._availability(request)
            else:
                ret = self._pickup_call(request)
        return _response(operation, ret)

    def _authenticate(self, request: etree._Element) -> None:
        """1.2.1 Permissions."""
        auth = request.find("authDataV1")
        if auth is None:
            raise _Fault("AuthData is null")
        if _text(auth, "login") != self.login or _text(auth, "password") != self.password:
            raise _Fault("Login failed")

    # --- generatePackagesNumbersV4 --------------------------------------------------------------------

    def _generate(self, request: etree._Element) -> etree._Element:
        uml = request.find("openUMLFeV3")
        if uml is None:
            raise _Fault("Parameter openUMLV cannot be null")
        packages = uml.findall("packages")
        if not packages:
            raise _Fault("One of '(Package)' is expected.")
        policy = _text(request, "pkgNumsGenerationPolicyV1") or "STOP_ON_FIRST_ERROR"
        lang = _text(request, "langCode")
        checked = [self._check_package(p, lang) for p in packages]
        failed = [c for c in checked if c[0] != "OK"]
        session_id = self._new("session")
        out_packages = []
        created = stop = False
        for pkg, (status, problems) in zip(packages, checked, strict=True):
            if status != "OK" or stop or (failed and policy == "ALL_OR_NOTHING"):
                shown = status if status != "OK" else "NOT_PROCESSED"
                out_packages.append(self._failed_package(pkg, shown, problems))
                stop = stop or (policy == "STOP_ON_FIRST_ERROR" and status != "OK")
                continue
            out_packages.append(self._create(pkg, session_id))
            created = True
        return _el("return", _el("Status", text=failed[0][0] if failed else "OK"),
                   _el("SessionId", text=session_id) if created else None, _el("Packages", *out_packages))

    def _failed_package(self, pkg: etree._Element, status: str,
                        problems: list[tuple[int, str, str, str]]) -> etree._Element:
        details = _el("ValidationDetails", *[
            _el("ValidationInfo", _el("ErrorId", text=eid), _el("ErrorCode", text=code),
                _el("FieldNames", text=fields), _el("Info", text=info)) for eid, code, fields, info in problems
        ]) if problems else None
        parcels = _el("Parcels", *[_el("Parcel", _el("Status", text="OK" if status != "DUPLICATED_PARCEL_REFERENCE"
                                                     else status), _opt("Reference", _text(p, "reference")))
                                   for p in pkg.findall("parcels")])
        return _el("Package", _el("Status", text=status), _opt("Reference", _text(pkg, "reference")), details,
                   parcels)

    def _check_package(self, pkg: etree._Element, lang: str | None) -> tuple[str, list[tuple[int, str, str, str]]]:
        """(status, [(ErrorId, ErrorCode, FieldNames, Info)]) per the documentation's validation tables and
        Error codes.xlsx."""
        if lang != "PL":
            return "UNSUPPORTED_LANG_CODE", []
        reference = _text(pkg, "reference")
        if reference and self.package_by_reference(reference) is not None:
            return "DUPLICATED_PACKAGE_REFERENCE", []
        known_parcels = {p.reference for package in self.packages.values() for p in package.parcels}
        for parcel in pkg.findall("parcels"):
            ref = _text(parcel, "reference")
            if ref and ref in known_parcels:
                return "DUPLICATED_PARCEL_REFERENCE", []
        problems: list[tuple[int, str, str, str]] = []
        receiver, sender = pkg.find("receiver"), pkg.find("sender")
        self._check_party(receiver, "RECEIVER", "Receiver", problems, 1502, required=True)
        self._check_party(sender, "SENDER", "Sender", problems, 1506,
                          required=_text(sender, "fid") is None)
        if _text(pkg, "payerType") is None:
            problems.append((1000, "ERROR_INVALID_PAYMENT_TYPE", "PayerType", "Incorrect payment mode"))
        for key in ("ref1", "ref2", "ref3"):
            if len(_text(pkg, key) or "") > 100:
                problems.append((1000, f"ERROR_PACKAGE_REF_NO{key[-1]}_SIZE_EXCEEEDED", key.capitalize(),
                                 f"Maximum reference number {key[-1]} size exceeded (100)"))
        if len(reference or "") > 100:  # generatePackagesNumbersV1 "Reference Maximum number of characters100"
            problems.append((1000, "ERROR_PACKAGE_REFERENCE_SIZE_EXCEEDED", "Reference",
                             "Maximum reference size exceeded (100)"))
        services = pkg.find("services")
        pudo = services is not None and services.find("dpdPickup") is not None
        domestic = (_text(receiver, "countryCode") or "PL") == "PL"
        parcels = pkg.findall("parcels")
        if not parcels:
            problems.append((1000, "ERROR_PARCEL_WEIGHT_REQUIRED", "Parcels", "One or more parcels required"))
        for index, parcel in enumerate(parcels, start=1):
            self._check_parcel(parcel, index, problems, domestic=domestic, pudo=pudo)
        if services is not None:
            self._check_services(services, pkg, problems, domestic=domestic)
        return ("INCORRECT_DATA" if problems else "OK"), problems

    @staticmethod
    def _check_party(node: etree._Element | None, who: str, field_prefix: str,
                     problems: list[tuple[int, str, str, str]], postal_error: int, *, required: bool) -> None:
        label = "Recipient" if who == "RECEIVER" else "Sender"
        if node is None:
            if required:
                problems.append((1000, f"ERROR_{who}_ADDRESS_REQUIRED", field_prefix, f"{label} address required"))
            return
        if required:
            if not (_text(node, "name") or _text(node, "company")):
                problems.append((1000, f"ERROR_{who}_NAME_OR_COMPANY_REQUIRED", f"{field_prefix}Name",
                                 f"{label} name or company name required"))
            for key, code, what in (("address", "ADDRESS", "address"), ("city", "CITY", "city"),
                                    ("postalCode", "POSTAL_CODE", "post code")):
                if not _text(node, key):
                    problems.append((1000, f"ERROR_{who}_{code}_REQUIRED", f"{field_prefix}{key[0].upper()}{key[1:]}",
                                     f"{label} {what} required"))
        sizes = {"name": (100, 1056, 1065), "company": (100, 1057, 1066), "address": (100, 1058, 1067),
                 "city": (50, 1059, 1068), "email": (100, 1060, 1069), "phone": (100, 1061, 1070)}
        for key, (limit, receiver_id, sender_id) in sizes.items():
            value = _text(node, key) or ""
            if len(value) > limit:
                problems.append((receiver_id if who == "RECEIVER" else sender_id,
                                 f"ERROR_{who}_{key.upper()}_MAX_SIZE_EXCEEDED", f"{field_prefix}{key.capitalize()}",
                                 f"{label} {key} size exceeded ({limit})"))
        code = _text(node, "postalCode")
        country = _text(node, "countryCode") or "PL"
        if code and country == "PL" and not re.fullmatch(r"\d{5}", code):
            problems.append((postal_error, f"INCORRECT_{who}_POSTAL_CODE", f"{field_prefix}PostalCode",
                             f"Incorrect {label.lower()} post code format({code})"))

    @staticmethod
    def _check_parcel(parcel: etree._Element, index: int, problems: list[tuple[int, str, str, str]], *,
                      domestic: bool, pudo: bool) -> None:
        raw = _text(parcel, "weight")
        if raw is None:
            problems.append((1000, "ERROR_PARCEL_WEIGHT_REQUIRED", f"Parcels[{index}]/Weight",
                             "Parcel weight required"))
        else:
            kg = Decimal(raw)
            if kg < Decimal("0.01"):
                problems.append((1011, "ERROR_INCORRECT_WEIGHT", f"Parcels[{index}]/Weight",
                                 "Minimum parcel weight 0.01 kg"))
            elif domestic and kg > 50:
                problems.append((1000, "ERROR_PARCEL_WEIGHT_INCORRECT", f"Parcels[{index}]/Weight",
                                 "Incorrect parcel weight value (allowed interval 0.51 - 50kg)"))
            if pudo and kg > 20:
                problems.append((3015, "ERROR_INCORRECT_WEIGHT_FOR_DPD_PICKUP", f"Parcels[{index}]/Weight",
                                 "Maximum parcel weight 20 kg"))
        for key, error in (("sizeX", 1045), ("sizeY", 1046), ("sizeZ", 1047)):
            size = _text(parcel, key)
            if size is not None and int(size) > 250:
                problems.append((error, f"ERROR_PARCEL_SIZE_{key[-1]}_OUT_OF_RANGE", f"Parcels[{index}]/{key}",
                                 "Maximum dimension of one side of the parcel is 250 cm"))
        if len(_text(parcel, "content") or "") > 300:
            problems.append((1000, "ERROR_PACKAGE_CONTENT_SIZE_EXCEEEDED", f"Parcels[{index}]/Content",
                             "Maximum parcel content size exceeded (300)"))
        for key, eid in (("customerData1", 1078), ("customerData2", 1079), ("customerData3", 1080)):
            if len(_text(parcel, key) or "") > 200:
                problems.append((eid, f"ERROR_PARCEL_CUSTOMER_DATA{key[-1]}_MAX_SIZE_EXCEEDED",
                                 f"Parcels[{index}]/{key}", f"Client data {key[-1]} size exceeded (200)"))

    @staticmethod
    def _check_services(services: etree._Element, pkg: etree._Element, problems: list[tuple[int, str, str, str]], *,
                        domestic: bool) -> None:
        """1.2.5.2 Domestic services: cod (PLN, 0.01-15000), declaredValue (PLN, up to 500 000), dpdPickup."""
        for name, code_prefix, top, error_id in (("cod", "COD", Decimal("15000"), 1008),
                                                  ("declaredValue", "DECL", Decimal("500000"), 1005)):
            node = services.find(name)
            if node is None:
                continue
            text = _text(node, "amount") or ""
            if not re.fullmatch(r"\d+(\.\d{1,2})?", text):
                problems.append((1000, f"ERROR_{code_prefix}_VALUE_REGEX", f"Services/{name}/Amount",
                                 f"Incorrect {'COD' if name == 'cod' else 'ADDITIONAL INSURANCE COVER'} amount format"))
                continue
            try:
                value = Decimal(text)
            except InvalidOperation:  # pragma: no cover - the pattern above rules it out
                continue
            if value < Decimal("0.01") or value > top:
                problems.append((error_id, "ERROR_COD_AMOUNT_OUT_OF_RANGE" if name == "cod"
                                 else "ERROR_DECLARED_VALUE_AMOUNT_OUT_OF_RANGE", f"Services/{name}/Amount",
                                 f"amount must be between 0.01 - {top}"))
            if domestic and (_text(node, "currency") or "PLN") != "PLN":
                problems.append((1000, f"ERROR_{code_prefix}_AMOUNT_CURRENCY", f"Services/{name}/Currency",
                                 "Currency for domestic service must be PLN"))
        pickup = services.find("dpdPickup")
        if pickup is not None:
            if not _text(pickup, "pudo"):
                problems.append((3019, "ERROR_EMPTY_PUDO", "Services/DpdPickup/Pudo",
                                 "SP point identifier cannot be blank"))
            if services.find("guarantee") is not None:
                problems.append((3006, "ERROR_DPD_PICKUP_TIME1200_EXCLUDING", "Services/Guarantee",
                                 "Guarantee services cannot be combined with dpdPickup"))
            receiver = pkg.find("receiver")
            if not (_text(receiver, "email") or _text(receiver, "phone")):
                problems.append((3016, "ERROR_EMPTY_RECEIVER_EMAIL_FOR_DPD_PICKUP", "Receiver/Email",
                                 "Please provide recipient e-mail address or telephone number"))

    def _create(self, pkg: etree._Element, session_id: int) -> etree._Element:
        package_id = self._new("package")
        receiver = pkg.find("receiver")
        sender = pkg.find("sender")
        country = _text(receiver, "countryCode") or "PL"
        parcels = []
        for node in pkg.findall("parcels"):
            parcel_id = self._new("parcel")
            parcels.append(SimParcel(parcel_id=parcel_id, reference=_text(node, "reference") or f"##{parcel_id}",
                                     waybill=f"{self._new('waybill'):013d}S",
                                     weight=Decimal(_text(node, "weight") or 0)))
        services_node = pkg.find("services")
        services = {child.tag: {c.tag: c.text for c in child}
                    for child in (services_node if services_node is not None else [])}
        fid = _text(sender, "fid")
        package = SimPackage(
            package_id=package_id, session_id=session_id, reference=_text(pkg, "reference") or f"##{package_id}",
            session_type="DOMESTIC" if country == "PL" else "INTERNATIONAL",
            sender_fid=int(fid) if fid else None,
            receiver={c.tag: c.text or "" for c in receiver} if receiver is not None else {},
            services=services, parcels=parcels, payer_type=_text(pkg, "payerType") or "")
        self.packages[package_id] = package
        return _el("Package", _el("Status", text="OK"), _el("PackageId", text=package_id),
                   _opt("Reference", _text(pkg, "reference")),
                   _el("Parcels", *[_el("Parcel", _el("Status", text="OK"), _el("ParcelId", text=p.parcel_id),
                                        _opt("Reference", None if p.reference.startswith("##") else p.reference),
                                        _el("Waybill", text=p.waybill)) for p in parcels]))

    # --- generateSpedLabelsV4 / generateProtocolV2 ----------------------------------------------------

    def _services_params(self, request: etree._Element) -> tuple[etree._Element, str, list[tuple[etree._Element | None,
                                                                                               SimPackage | None]]]:
        params = request.find("dpdServicesParamsV1")
        if params is None:
            raise _Fault("Parameter dpdServicesParamsV1 cannot be null")
        session = params.find("session")
        if _text(params, "policy") is None:
            raise _Fault("Policy is required")  # "For DPDServicesParamsV1 field: Policy ... Yes" (u: text)
        if session is None or _text(session, "sessionType") is None:
            raise _Fault("Session and its SessionType are required")  # same table (u: text)
        wanted: list[tuple[etree._Element | None, SimPackage | None]] = []
        session_id = _text(session, "sessionId")
        if session_id is not None:
            wanted += [(None, p) for p in self.packages.values() if p.session_id == int(session_id)]
        for node in session.findall("packages"):
            wanted.append((node, self._find_package(node)))
        return params, _text(session, "sessionType") or "", wanted

    def _find_package(self, node: etree._Element) -> SimPackage | None:
        """By packageId; else by reference ("ignored if parcel ID is provided"); else by a parcel's id,
        reference or waybill (generateSpedLabelsV1, "Parameters")."""
        package_id = _text(node, "packageId")
        if package_id is not None:
            return self.packages.get(int(package_id))
        reference = _text(node, "reference")
        if reference is not None:
            return self.package_by_reference(reference)
        for parcel in node.findall("parcels"):
            for package in self.packages.values():
                for p in package.parcels:
                    if (_text(parcel, "parcelId") == str(p.parcel_id) or _text(parcel, "reference") == p.reference
                            or _text(parcel, "waybill") == p.waybill):
                        return package
        return None

    @staticmethod
    def _session_answer(found: list[tuple[etree._Element | None, SimPackage | None]], status: str,
                        description: str | None = None, *, package_status: str = "OK") -> etree._Element:
        items = []
        session_id = None
        for node, package in found:
            if package is None:
                items.append(_el("packages", _opt("packageId", _text(node, "packageId")),
                                 _opt("reference", _text(node, "reference")),
                                 _el("statusInfo", _el("status", text="NOT_FOUND"))))
                continue
            session_id = package.session_id
            items.append(_el("packages", _el("packageId", text=package.package_id), *[
                _el("parcels", _el("parcelId", text=p.parcel_id), _el("reference", text=p.reference),
                    _el("statusInfo", _el("status", text=package_status)), _el("waybill", text=p.waybill))
                for p in package.parcels], _el("reference", text=package.reference),
                _el("statusInfo", _el("status", text=package_status))))
        return _el("session", *items, _opt("sessionId", session_id),
                   _el("statusInfo", _opt("description", description), _el("status", text=status)))

    def _labels(self, request: etree._Element, *, not_ready: bool) -> etree._Element:
        _params, session_type, found = self._services_params(request)
        fmt = _text(request, "outputDocFormatV1") or "PDF"
        page = _text(request, "outputDocPageFormatV1") or "A4"
        packages = [p for _, p in found if p is not None]
        if not_ready or not packages or len(packages) < len(found):
            return _el("return", self._session_answer(found, "NOT_FOUND"))
        if any(p.session_type != session_type for p in packages):
            return _el("return", self._session_answer(found, "INCORRECT_PKGS_FOR_SESSION_TYPE"))
        if fmt in ("ZPL", "EPL") and page != "LBL_PRINTER":
            return _el("return", self._session_answer(found, "NOT_PROCESSED",
                                                      f"{fmt} requires outputDocPageFormatV1 = LBL_PRINTER"))
        if fmt not in ("PDF", "ZPL"):
            return _el("return", self._session_answer(found, "NOT_PROCESSED", f"{fmt} is not simulated"))
        parcels = [(package, parcel) for package in packages for parcel in package.parcels]
        if fmt == "ZPL":
            document = "".join(f"^XA^FO40,40^A0N,40,40^FD{parcel.waybill}^FS^FO40,100^BCN,120,Y,N,N"
                               f"^FD{parcel.waybill}^FS^FO40,260^A0N,30,30^FD{package.reference}^FS^XZ\n"
                               for package, parcel in parcels).encode()
        else:
            document = minimal_pdf([[f"DPD {page} label", f"Waybill {parcel.waybill}",
                                     f"Reference {package.reference}", f"Parcel {parcel.reference}",
                                     f"To {package.receiver.get('name', '')}, {package.receiver.get('city', '')}"]
                                    for package, parcel in parcels])
        return _el("return", _el("documentData", text=b64encode(document).decode()),
                   self._session_answer(found, "OK"))

    def _protocol(self, request: etree._Element) -> etree._Element:
        params, session_type, found = self._services_params(request)
        packages = [p for _, p in found if p is not None]
        if not packages or len(packages) < len(found):
            return _el("return", self._session_answer(found, "NOT_FOUND"))
        if any(p.session_type != session_type for p in packages):
            return _el("return", self._session_answer(found, "INCORRECT_PKGS_FOR_SESSION_TYPE"))
        fid = _text(params, "pickupAddress/fid")
        if fid is None or any(p.sender_fid != int(fid) for p in packages):
            return _el("return", self._session_answer(found, "INCORRECT_PICKUP_ADDRESS_FID",
                                                      package_status="INCORRECT_PICKUP_ADDRESS_FID"))
        key = frozenset(p.package_id for p in packages)
        if key not in self.protocols:
            document_id = str(self._new("document"))
            lines = [f"DPD handover protocol {document_id}", f"Sender FID {fid}"] + [
                f"{p.package_id} {parcel.waybill} {parcel.weight} kg" for p in packages for parcel in p.parcels]
            self.protocols[key] = (document_id, minimal_pdf([lines]))
        document_id, document = self.protocols[key]
        return _el("return", _el("documentData", text=b64encode(document).decode()),
                   _el("documentId", text=document_id), self._session_answer(found, "OK"))

    # --- getCourierOrderAvailabilityV1 ----------------------------------------------------------------

    def _availability(self, request: etree._Element) -> etree._Element:
        place = request.find("senderPlaceV1")
        if place is None:
            raise _Fault("Parameter senderPlaceV1 cannot be null")
        zip_code = _text(place, "zipCode") or ""
        if not _text(place, "countryCode") or not zip_code.isdigit():
            return _el("return", _el("status", text="WRONG_POSTAL_PATTERN"))
        ranges = self.availability.get(zip_code, list(DEFAULT_RANGES))
        return _el("return", _el("ranges"), *[_el("ranges", _el("offset", text=offset), _el("range", text=text))
                                              for text, offset in ranges], _el("status", text="OK"))

    # --- packagesPickupCallV4 -------------------------------------------------------------------------

    def _pickup_call(self, request: etree._Element) -> etree._Element:
        params = request.find("dpdPickupParamsV3")
        if params is None:
            raise _Fault("Parameter dpdPickupCallParamsV3 cannot be null")
        operation = _text(params, "operationType")
        if operation == "CANCEL":
            return self._pickup_cancel(params)
        if operation != "INSERT":
            return self._pickup_status("NOT_PROCESSED", [("NOT_SIMULATED", f"operationType {operation}", "")])
        required = ["pickupDate", "pickupTimeFrom", "pickupTimeTo", "orderType", "waybillsReady",
                    "pickupCallSimplifiedDetails/pickupPayer/payerNumber",
                    "pickupCallSimplifiedDetails/pickupPayer/payerName",
                    "pickupCallSimplifiedDetails/pickupSender/senderName",
                    "pickupCallSimplifiedDetails/pickupSender/senderAddress",
                    "pickupCallSimplifiedDetails/pickupSender/senderCity",
                    "pickupCallSimplifiedDetails/pickupSender/senderPostalCode",
                    "pickupCallSimplifiedDetails/pickupSender/senderPhone",
                    *[f"pickupCallSimplifiedDetails/packagesParams/{k}"
                      for k in ("dox", "standardParcel", "pallet", "parcelsCount", "palletsCount", "doxCount")]]
        if params.find("pickupCallSimplifiedDetails/pickupCustomer") is None:
            required.append("pickupCallSimplifiedDetails/pickupCustomer")
        missing = [path for path in required if params.find(path) is None or (
            len(params.find(path)) == 0 and not (params.find(path).text or "").strip()
            and not path.endswith("pickupCustomer"))]
        if missing:
            return self._pickup_status("INCORRECT_DATA", [("FIELD_REQUIRED", "Field required", ", ".join(missing))])
        time_from, time_to = _text(params, "pickupTimeFrom") or "", _text(params, "pickupTimeTo") or ""
        if len(time_from) > 5 or len(time_to) > 5 or not (time_from < time_to):
            return self._pickup_status("INCORRECT_DATA", [("INCORRECT_TIME_RANGE", "Incorrect pickup time range",
                                                           "PickupTimeFrom, PickupTimeTo")])
        number = f"{_text(params, 'pickupDate') or ''}".replace("-", "") + f"{self._new('order'):03d}"
        order = SimOrder(order_number=number, check_sum=self._rng.randrange(10_000_000, 99_999_999),
                         params={"date": _text(params, "pickupDate"), "from": time_from, "to": time_to,
                                 "type": _text(params, "orderType")})
        self.orders[number] = order
        return _el("return", _el("checkSum", text=order.check_sum), _el("orderNumber", text=number),
                   _el("statusInfo", _el("status", text="OK")))

    def _pickup_cancel(self, params: etree._Element) -> etree._Element:
        number, check_sum = _text(params, "orderNumber"), _text(params, "checkSum")
        if not number or check_sum is None:
            return self._pickup_status("INCORRECT_DATA",
                                       [("FIELD_REQUIRED", "Field required", "OrderNumber, CheckSum")])
        order = self.orders.get(number)
        if order is None or order.check_sum != int(check_sum) or order.state == "cancelled":
            return self._pickup_status("NOT_FOUND", [])
        if order.state == "closed":
            return self._pickup_status("NOT_PROCESSED", [("ORDER_CLOSED", "The courier order is closed", "")])
        order.state = "cancelled"
        return _el("return", _el("statusInfo", _el("status", text="OK")))

    @staticmethod
    def _pickup_status(status: str, errors: Iterable[tuple[str, str, str]]) -> etree._Element:
        return _el("return", _el("statusInfo", *[
            _el("errorDetails", _el("code", text=code), _el("description", text=description), _opt("fields", fields))
            for code, description, fields in errors], _el("status", text=status)))


def operation_of(raw: bytes) -> str:
    """The operation a SOAP request names (the Body's first element), without parsing it."""
    match = _OP_IN_BODY.search(raw[:4096])
    return match.group(1).decode() if match else "?"


class SimulatorAdapter(BaseAdapter):
    """A ``requests`` adapter that hands each request to the simulator's WSGI app in-process, with the
    transport-level faults: "timeout" (ConnectTimeout, nothing sent) and "lost" (the app applied it, then
    ReadTimeout); and a "slow" answer turns into ReadTimeout when it takes longer than the read timeout."""

    def __init__(self, sim: DpdSimulator):
        super().__init__()
        self.sim = sim

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: float | tuple[float | None, float | None] | None = None, verify: bool | str = True,
             cert: Any = None, proxies: Mapping[str, str] | None = None) -> requests.Response:
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        operation = operation_of(body)
        fault = self.sim._take_fault(operation, TRANSPORT_FAULTS)
        if fault == "timeout":
            with self.sim._lock:
                self.sim.log.append(Exchange(operation=operation, request=body, fault="timeout"))
            raise requests.exceptions.ConnectTimeout("simulated: DPD did not accept the connection in time",
                                                     request=request)
        url = requests.utils.urlparse(request.url)
        delays: list[float] = []
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method, "PATH_INFO": url.path, "QUERY_STRING": url.query or "",
            "SERVER_NAME": url.hostname or "localhost", "SERVER_PORT": str(url.port or 443),
            "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": request.headers.get("Content-Type", ""), "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(), "wsgi.url_scheme": url.scheme, "wsgi.version": (1, 0),
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
            "dpdsim.in_process": True, "dpdsim.delay": delays,
        }
        for key, value in request.headers.items():
            environ[f"HTTP_{key.upper().replace('-', '_')}"] = value
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            captured["status"], captured["headers"] = status, headers

        content = b"".join(self.sim(environ, start_response))
        read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        if fault == "lost" or (delays and read_timeout is not None and delays[0] >= read_timeout):
            with self.sim._lock:
                self.sim.log[-1].fault = fault or "slow-timeout"
            raise requests.exceptions.ReadTimeout("simulated: DPD applied the request but the answer was lost",
                                                  request=request)
        response = requests.Response()
        response.status_code = int(captured["status"].split()[0])
        response.reason = captured["status"].partition(" ")[2]
        response.headers = CaseInsensitiveDict(dict(captured["headers"]))
        response._content = content
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.url = request.url or ""
        response.request = request
        response.elapsed = timedelta(seconds=delays[0] if delays else 0.0)
        response.connection = self
        return response

    def close(self) -> None:
        pass
