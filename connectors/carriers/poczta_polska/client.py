"""SOAP I/O with Elektroniczny Nadawca (EN WebAPI) through zeep: no mapping, no decisions.

The WSDL is the vendored file ``wsdl/en.wsdl`` (loaded once per process, never from the network);
the address comes from the options (``client.create_service(ENBinding, url)``, as
/work/shared/notes/carriers.md "Poczta Polska" says). HTTP Basic auth on a requests session with
connect/read timeouts; zeep parses answers with DTDs, entities and external references forbidden, so
a hostile or broken answer (billion laughs, an external entity) is refused, never expanded.

Errors: a timeout, a broken connection, a 5xx, a SOAP Server fault or an answer that is not valid XML
is retried for READ calls (``attempts``) and then becomes a RetryableError; a WRITE call is sent once
(the carrier looks up by guid before sending again). A SOAP Client fault (our request does not fit
the schema) is a PermanentError; a 401/403 is LoginNeeded. Every message is one line naming the
carrier and the operation.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import requests
import structlog
import zeep
import zeep.exceptions
from requests.adapters import BaseAdapter
from zeep.helpers import serialize_object
from zeep.wsdl import Document

from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.platform.metrics import connector_request

from .mapping import CARRIER

NAMESPACE = "http://e-nadawca.poczta-polska.pl"
BINDING = f"{{{NAMESPACE}}}ENBinding"
WSDL_PATH = Path(__file__).parent / "wsdl" / "en.wsdl"
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_UNSAFE = (zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden,
           zeep.exceptions.ExternalReferenceForbidden)


def hardened_settings() -> zeep.Settings:
    """zeep's XML parsing with every dangerous feature off (and strict schema handling)."""
    return zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True,
                         xml_huge_tree=False)


@functools.cache
def wsdl_document() -> Document:
    """The parsed vendored WSDL, shared by every client of the process (parsing takes most of a second)."""
    return Document(str(WSDL_PATH), zeep.Transport(), settings=hardened_settings())


class ENUnavailable(RetryableError):
    """EN did not answer usably. ``maybe_applied``: the request reached EN (a read timeout, a 5xx, a broken
    answer), so a write may have been applied; false when it never left (no connection)."""

    def __init__(self, message: str, *, maybe_applied: bool):
        super().__init__(message)
        self.maybe_applied = maybe_applied


class _Retry(Exception):
    """One failed attempt worth another (for reads); ``str()`` says what happened."""

    def __init__(self, message: str, outcome: str, *, maybe_applied: bool = True):
        super().__init__(message)
        self.outcome = outcome
        self.maybe_applied = maybe_applied


class _Transport(zeep.Transport):
    """zeep's requests transport, plus: an HTTP error whose body is not SOAP (a proxy's or a load balancer's
    page, a 401) is judged by its status before zeep tries to read it as a SOAP fault."""

    def post(self, address: str, message: Any, headers: Any) -> requests.Response:
        response = super().post(address, message, headers)
        if _DOCTYPE.search(response.content[:65536]):
            # SOAP 1.1 (section 3): "A SOAP message MUST NOT contain a Document Type Declaration". Refused before
            # any parser sees it; zeep's forbid_dtd/forbid_entities stand behind this as a second line.
            raise _Unsafe("a Document Type Declaration")
        status = response.status_code
        if status == 200:
            return response
        if status in (401, 403):
            raise _AuthRefused(status)
        media = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media not in ("text/xml", "application/soap+xml"):
            if status >= 500 or status in (408, 429):
                raise _Retry(f"HTTP {status}", "5xx" if status >= 500 else "4xx")
            raise _HttpRefused(status)
        return response


class _Unsafe(Exception):
    pass


class _AuthRefused(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _HttpRefused(_AuthRefused):
    pass


class ENClient:
    """One EN WebAPI account. ``adapter`` (a requests adapter, e.g. the simulator in-process) replaces
    the network for http:// and https://; ``sleep`` is the pause between read attempts."""

    def __init__(
        self,
        connector: str,
        url: str,
        login: str,
        password: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        attempts: int = 3,
        throttle: Any | None = None,
        log: Any | None = None,
        adapter: BaseAdapter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.connector = connector
        self.url = url
        self.attempts = attempts
        self.throttle = throttle
        self.log = log or structlog.get_logger("connectors.poczta_polska").bind(connector=connector)
        self.sleep = sleep
        session = requests.Session()
        session.auth = requests.auth.HTTPBasicAuth(login, password)
        if adapter is not None:
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.timeout = (connect_timeout, timeout)
        self.transport = _Transport(session=session, timeout=timeout, operation_timeout=self.timeout)
        session.headers["User-Agent"] = "hub-poczta-polska/1"
        self.client = zeep.Client(wsdl_document(), transport=self.transport, settings=hardened_settings())
        self.service = self.client.create_service(BINDING, url)
        self.types = self.client.type_factory("ns0")

    def close(self) -> None:
        self.transport.session.close()

    # --- one call ------------------------------------------------------------------------------

    def call(self, operation: str, *, write: bool, **kwargs: Any) -> Any:
        """The operation's answer as plain dicts/lists; see the module docstring for the errors."""
        attempts = 1 if write else self.attempts
        for attempt in range(1, attempts + 1):
            if self.throttle is not None:
                self.throttle.wait()
            try:
                result = self._once(operation, kwargs)
            except _Retry as failure:
                connector_request(self.connector, failure.outcome, failure.outcome)
                self.log.warning("poczta_polska.attempt_failed", operation=operation, attempt=attempt,
                                 error=str(failure))
                if attempt < attempts:
                    self.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
                    continue
                tries = f"after {attempts} attempts" if attempts > 1 else (
                    "not retried: it may have been applied; the next attempt looks it up first" if write
                    else "one attempt")
                raise ENUnavailable(f"{CARRIER} {operation}: {failure} ({tries})",
                                    maybe_applied=failure.maybe_applied) from None
            connector_request(self.connector, "2xx")
            return serialize_object(result, dict)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, operation: str, kwargs: dict[str, Any]) -> Any:
        try:
            return getattr(self.service, operation)(**kwargs)
        except requests.ConnectTimeout:
            raise _Retry(f"no connection within {self.timeout[0]:g} s", "timeout", maybe_applied=False) from None
        except requests.Timeout:
            raise _Retry(f"no answer within {self.timeout[1]:g} s", "timeout") from None
        except requests.ConnectionError as exc:
            # no connection made (refused, no such host): nothing was sent; a connection dropped mid-way may have been
            sent = not any(name in repr(exc) for name in ("NewConnectionError", "NameResolutionError"))
            raise _Retry(f"network error: {_first_line(exc)}", "network", maybe_applied=sent) from None
        except _HttpRefused as exc:
            connector_request(self.connector, f"{exc.status // 100}xx", "4xx")
            raise PermanentError(f"{CARRIER} {operation}: HTTP {exc.status} (not a SOAP answer); check service_url") \
                from None
        except _AuthRefused as exc:
            connector_request(self.connector, "4xx", "auth")
            raise LoginNeeded(f"{CARRIER} {operation}: HTTP {exc.status}: EN refused the WebAPI login/password; "
                              "check login and password in the connector's config") from None
        except (_Unsafe, *_UNSAFE) as exc:
            connector_request(self.connector, "2xx", "unsafe_xml")
            what = str(exc) if isinstance(exc, _Unsafe) else type(exc).__name__
            raise PermanentError(f"{CARRIER} {operation}: refused the answer: it carries {what} (DTDs, entities and "
                                 "external references are forbidden; a SOAP answer never has them), nothing in it "
                                 "was read") from None
        except zeep.exceptions.TransportError as exc:
            status = exc.status_code
            if status == 200 or status >= 500 or status in (408, 429):
                what = "an answer that is not XML" if status == 200 else f"HTTP {status}"
                raise _Retry(what, "5xx" if status >= 500 else "malformed") from None
            connector_request(self.connector, f"{status // 100}xx", "4xx")
            raise PermanentError(f"{CARRIER} {operation}: HTTP {status}") from None
        except zeep.exceptions.Fault as exc:
            code = str(exc.code or "")
            message = _first_line(exc.message or "no faultstring")
            if code.rsplit(":", 1)[-1].startswith("Client"):
                connector_request(self.connector, "5xx", "4xx")
                raise PermanentError(f"{CARRIER} {operation}: EN refused the request (SOAP fault {code}): "
                                     f"{message}") from None
            raise _Retry(f"SOAP fault {code or '(no code)'}: {message}", "5xx") from None
        except zeep.exceptions.XMLParseError as exc:
            raise _Retry(f"the answer does not fit en.wsdl: {_first_line(exc)}", "malformed") from None
        except zeep.exceptions.ValidationError as exc:
            raise PermanentError(f"{CARRIER} {operation}: our request does not fit en.wsdl: "
                                 f"{_first_line(exc)}") from None
        except zeep.exceptions.Error as exc:  # any other answer zeep cannot read against the WSDL
            raise _Retry(f"the answer does not fit en.wsdl: {type(exc).__name__}: {_first_line(exc)}",
                         "malformed") from None

    # --- the operations the carrier uses (names as in en.wsdl) ----------------------------------

    def new(self, type_name: str, fields: dict[str, Any]) -> Any:
        """A zeep object of an en.wsdl type (the concrete przesylkaType subtype of a shipment)."""
        return getattr(self.types, type_name)(**fields)

    def add_shipment(self, przesylki: list[Any], id_bufor: int | None) -> list[dict[str, Any]]:
        return _answer(self.call("addShipment", write=True, przesylki=przesylki, idBufor=id_bufor), "retval")["retval"]

    def get_envelope_bufor(self, id_bufor: int | None) -> dict[str, Any]:
        return _answer(self.call("getEnvelopeBufor", write=False, idBufor=id_bufor), "przesylka", "error")

    def get_envelope_bufor_list(self) -> dict[str, Any]:
        return _answer(self.call("getEnvelopeBuforList", write=False), "bufor", "error")

    def create_envelope_bufor(self, opis: str, data_nadania: date, urzad_nadania: int | None) -> dict[str, Any]:
        bufor = self.types.buforType(opis=opis, dataNadania=data_nadania, urzadNadania=urzad_nadania, active=True)
        return _answer(self.call("createEnvelopeBufor", write=True, bufor=[bufor]), "createdBufor", "error")

    def clear_envelope_by_guids(self, guids: list[str], id_bufor: int | None) -> dict[str, Any]:
        return _answer(self.call("clearEnvelopeByGuids", write=True, guid=guids, idBufor=id_bufor), "error")

    def get_addres_label_by_guid(self, guids: list[str], id_bufor: int | None) -> dict[str, Any]:
        return _answer(self.call("getAddresLabelByGuid", write=False, guid=guids, idBufor=id_bufor), "content", "error")

    def get_addres_label_by_guid_compact(self, guids: list[str], id_bufor: int | None) -> dict[str, Any]:
        return _answer(self.call("getAddresLabelByGuidCompact", write=False, guid=guids, idBufor=id_bufor),
                       "pdfContent", "error")

    def get_print_for_parcel(self, guids: list[str], *, fmt: str, resolution: str) -> dict[str, Any]:
        kind = self.types.PrintType(kind="ADDRESS_LABEL_BY_GUID", method="ALL_PARCELS_IN_ONE_FILE", format=fmt,
                                    resolution=resolution)
        return _answer(self.call("getPrintForParcel", write=False, guid=guids, type=kind), "printResult", "error")

    def send_envelope(self, urzad_nadania: int | None, id_bufor: int | None) -> dict[str, Any]:
        return _answer(self.call("sendEnvelope", write=True, urzadNadania=urzad_nadania, idBufor=id_bufor),
                       "idEnvelope", "envelopeStatus", "error", "envelopeFilename")

    def get_envelope_list(self, start: date, end: date) -> dict[str, Any]:
        return _answer(self.call("getEnvelopeList", write=False, startDate=start, endDate=end), "envelopes")

    def get_envelope_content_short(self, id_envelope: int) -> dict[str, Any]:
        return _answer(self.call("getEnvelopeContentShort", write=False, idEnvelope=id_envelope), "przesylka")

    def zamow_kuriera(self, fields: dict[str, Any]) -> dict[str, Any]:
        return _answer(self.call("zamowKuriera", write=True, **fields), "error")


def _first_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _answer(result: Any, *names: str) -> dict[str, Any]:
    """The answer as a dict of its child elements ``names``. zeep hands a response element with ONE child
    as that child's value (a list here: every such child in en.wsdl is maxOccurs > 1), one with several
    as a dict, and an empty one as None."""
    if len(names) == 1:
        if isinstance(result, dict) and set(result) <= {names[0]}:
            return {names[0]: _listed(result.get(names[0]))}
        return {names[0]: _listed(result)}
    if result is None:
        return {}
    if isinstance(result, dict):
        return result
    raise RetryableError(f"{CARRIER}: unexpected answer shape {type(result).__name__} (expected {', '.join(names)})")


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
