"""DPDServices over SOAP (zeep on the vendored WSDL): I/O only, one method per call.

The WSDL and its XSD are loaded from this package (wsdl/, byte-identical to shared/specs/carriers/dpd_pl),
never from the network; the service address comes from the options. XML hardening, two layers: an answer
declaring a DTD is refused before any parsing (SOAP forbids DTDs), and zeep parses with its own hardening
on (no DTD, no entities, no external references, libxml2's tree limits kept), so a billion-laughs or an
external-entity answer is refused, never expanded. Every failure leaves this module as a one-line
RetryableError or PermanentError naming DPD and the operation:

* ``DpdUnavailable`` (retryable): timeouts, broken connections, HTTP 5xx/408/429, malformed XML, DPD's own
  "try again later" faults. ``landed`` says whether DPD may have applied the request (False: it never left).
* ``DpdFault`` (permanent): DPD's SOAP fault (DPDServiceException) refusing the request.
* ``LoginNeeded`` (held): "Login failed" / "AuthData is null": the credentials in the config are wrong.
* ``DpdRequestInvalid`` (permanent): our request does not fit the schema; nothing was sent.
* ``PermanentError``: an answer refused by the XML hardening, one that does not fit the WSDL, HTTP 3xx/4xx.

Only the calls the caller marks as safe to repeat (reads: labels, availability) are retried here; the
others are sent once, and the caller decides what a lost answer means (carrier.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.helpers import serialize_object
from zeep.transports import Transport

from hub.kernel.errors import LoginNeeded, PermanentError, RetryableError
from hub.platform.metrics import connector_request
from hub.platform.ratelimit import Throttle

WSDL = Path(__file__).parent / "wsdl" / "DPDPackageXmlServices.wsdl"
NAMESPACE = "http://dpdservices.dpd.com.pl/"
BINDING = f"{{{NAMESPACE}}}DPDPackageObjServicesPortBinding"
# XML hardening: zeep refuses a DOCTYPE (forbid_dtd), entity declarations (forbid_entities) and fetching
# anything over http(s) while parsing (forbid_external); xml_huge_tree stays off (libxml2's depth/size limits)
SETTINGS = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True,
                         xml_huge_tree=False)
# faults that say DPD itself is in trouble (documentation v2.87, generatePackagesNumbersV1/V2 "Notes and
# suggestions": "Unexpected error during executing webserwice. Try again later", "Exception while saving
# request data", "Exception while saving response data", "Unknown error", "UNSPECIFIED_ERROR")
_TRANSIENT_FAULTS = re.compile(r"try again later|exception while saving|unknown error|unspecified_error",
                               re.IGNORECASE)
# documentation v2.87, 1.2.1 Permissions: no authDataV1 -> "AuthData is null", bad login or password ->
# "Login failed"
_LOGIN_FAULTS = re.compile(r"login failed|authdata is null", re.IGNORECASE)
# "A SOAP message MUST NOT contain a Document Type Declaration" (SOAP 1.1, section 3): an answer with one is
# refused unparsed (a "<" in XML text is escaped, so the bytes "<!DOCTYPE" can only be markup)
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class DpdUnavailable(RetryableError):
    """DPD did not answer usefully; ``landed``: False = the request never left, None = it may have been
    applied."""

    def __init__(self, message: str, *, landed: bool | None, status: int | None = None):
        super().__init__(message)
        self.landed = landed
        self.status = status


class DpdFault(PermanentError):
    """DPD's SOAP fault refusing the request; ``vendor_message`` is DPD's own text."""

    def __init__(self, message: str, *, vendor_message: str):
        super().__init__(message)
        self.vendor_message = vendor_message


class DpdRequestInvalid(PermanentError):
    """Our request does not fit the WSDL's schema: zeep refused to build it, nothing was sent."""


class _DtdDeclared(Exception):
    """The answer declares a DTD: refused before any parser sees it."""


class _HttpStatus(Exception):
    """An HTTP answer other than 200 that carries no SOAP fault (a gateway's 502 page, a redirect)."""

    def __init__(self, status: int, snippet: str):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.snippet = snippet


def one_line(text: object, limit: int = 300) -> str:
    """Vendor text for a one-line message: whitespace collapsed, cut at ``limit``."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class _Transport(Transport):
    """zeep's transport with the timeouts set, redirects not followed (a redirected POST turns into a
    GET), nothing logged (the body carries the password), and non-SOAP error answers told apart from
    SOAP faults (which SOAP 1.1 sends as HTTP 500)."""

    def post(self, address: str, message: Any, headers: Mapping[str, str]) -> requests.Response:
        response = self.session.post(address, data=message, headers=headers, timeout=self.operation_timeout,
                                     allow_redirects=False)
        if _DOCTYPE.search(response.content):
            raise _DtdDeclared()
        if response.status_code != 200 and not _is_soap_fault(response.content):
            raise _HttpStatus(response.status_code, one_line(response.text, 120))
        return response


def _is_soap_fault(content: bytes) -> bool:
    """Whether an error answer is a SOAP envelope with a Fault (parsed with entities, DTDs and the network
    off; an answer with a DOCTYPE never gets here)."""
    try:
        root = etree.fromstring(content, parser=_SAFE_PARSER)
    except etree.XMLSyntaxError:
        return False
    return root.find("{http://schemas.xmlsoap.org/soap/envelope/}Body/"
                     "{http://schemas.xmlsoap.org/soap/envelope/}Fault") is not None


def _never_sent(exc: requests.exceptions.RequestException) -> bool:
    """A connect timeout or a refused/unresolvable connection: the request never reached DPD."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        text = f"{type(reason).__name__} {reason}"
        return any(kind in text for kind in ("NewConnectionError", "NameResolutionError", "Connection refused"))
    return False


class DpdClient:
    """One DPDServices account at one address."""

    def __init__(self, *, connector: str, address: str, login: str, password: str, master_fid: int,
                 timeout: float = 30.0, connect_timeout: float = 10.0, attempts: int = 3,
                 throttle: Throttle | None = None, log: Any = None,
                 adapter: requests.adapters.BaseAdapter | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.connector = connector
        self.address = address
        self.attempts = attempts
        self.throttle = throttle
        self.log = log
        self.sleep = sleep
        session = requests.Session()
        if adapter is not None:  # tests and the demo: the simulator in-process instead of the network
            session.mount(address, adapter)
        # operation_timeout goes to requests as (connect, read) for every call
        self.transport = _Transport(session=session, operation_timeout=(connect_timeout, timeout))
        self._zeep = zeep.Client(str(WSDL), transport=self.transport, settings=SETTINGS)
        self._service = self._zeep.create_service(BINDING, address)
        self._auth = {"login": login, "masterFid": master_fid, "password": password}

    def close(self) -> None:
        self.transport.session.close()

    def message(self, operation: str, body: Mapping[str, Any]) -> etree._Element:
        """The SOAP envelope ``call`` would send (golden-request tests), with the password as sent."""
        return self._zeep.create_message(self._service, operation, **body, authDataV1=self._auth)

    def call(self, operation: str, body: Mapping[str, Any], *, repeat: bool = False) -> dict[str, Any] | None:
        """The operation's ``return`` element as plain dicts and lists (zeep's serialize_object).
        ``repeat``: the call is safe to send again (a read), so timeouts and 5xx are retried here."""
        attempts = self.attempts if repeat else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._once(operation, body)
            except DpdUnavailable as exc:
                if attempt >= attempts:
                    if attempts > 1:
                        raise DpdUnavailable(f"{exc} (after {attempts} attempts)", landed=exc.landed,
                                             status=exc.status) from exc
                    raise
                self.sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, operation: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
        op = f"DPD {operation}"
        if self.throttle is not None:
            self.throttle.wait()
        started = time.monotonic()
        try:
            result = getattr(self._service, operation)(**body, authDataV1=self._auth)
        except requests.exceptions.Timeout as exc:
            self._count("timeout", "timeout", operation, started)
            landed = False if _never_sent(exc) else None
            what = "did not accept the connection in time" if landed is False else "did not answer in time"
            raise DpdUnavailable(f"{op}: DPD {what} ({type(exc).__name__})", landed=landed) from None
        except requests.exceptions.RequestException as exc:
            self._count("network", "network", operation, started)
            landed = False if _never_sent(exc) else None
            raise DpdUnavailable(f"{op}: network error ({one_line(exc, 160)})", landed=landed) from None
        except _HttpStatus as exc:
            self._count(f"{exc.status // 100}xx", "5xx" if exc.status >= 500 else "4xx", operation, started)
            if exc.status >= 500 or exc.status in (408, 429):
                raise DpdUnavailable(f"{op}: HTTP {exc.status} without a SOAP answer ({exc.snippet})",
                                     landed=None, status=exc.status) from None
            raise PermanentError(f"{op}: HTTP {exc.status} without a SOAP answer ({exc.snippet}); is "
                                 f"{self.address} DPDServices' address?") from None
        except zeep.exceptions.Fault as exc:
            self._count("5xx", "fault", operation, started)
            raise self._fault(op, exc) from None
        except (_DtdDeclared, zeep.exceptions.DTDForbidden, zeep.exceptions.EntitiesForbidden,
                zeep.exceptions.ExternalReferenceForbidden) as exc:
            self._count("2xx", "hardening", operation, started)
            kind = "DTDForbidden" if isinstance(exc, _DtdDeclared) else type(exc).__name__
            raise PermanentError(f"{op}: answer refused by the XML hardening ({kind}: it declares a DTD or "
                                 "entities, which SOAP forbids); nothing in it was used") from None
        except (zeep.exceptions.XMLSyntaxError, zeep.exceptions.TransportError) as exc:
            self._count("2xx", "malformed", operation, started)
            raise DpdUnavailable(f"{op}: the answer is not well-formed XML ({one_line(exc.message, 120)})",
                                 landed=None) from None
        except zeep.exceptions.ValidationError as exc:
            self._count("none", "request", operation, started)
            raise DpdRequestInvalid(f"{op}: the request does not fit DPD's schema ({one_line(exc)})") from None
        except (zeep.exceptions.XMLParseError, zeep.exceptions.UnexpectedElementError) as exc:
            self._count("2xx", "schema", operation, started)
            raise PermanentError(f"{op}: the answer does not fit the WSDL's schema ({one_line(exc)})") from None
        except zeep.exceptions.Error as exc:
            self._count("2xx", "zeep", operation, started)
            raise PermanentError(f"{op}: {type(exc).__name__}: {one_line(exc)}") from None
        self._count("2xx", None, operation, started)
        return serialize_object(result, dict)

    def _fault(self, op: str, exc: zeep.exceptions.Fault) -> Exception:
        """DPD's fault: DPDServiceException.message in the detail, else the faultstring."""
        text = exc.message or ""
        if exc.detail is not None:
            found = exc.detail.find(f"{{{NAMESPACE}}}DPDServiceException/message")
            if found is not None and found.text:
                text = found.text
        text = one_line(text or "SOAP fault without a message")
        if _LOGIN_FAULTS.search(text):
            return LoginNeeded(f"{op}: DPD refused the login ({text}): check the connector's login, password "
                               "and master_fid")
        if _TRANSIENT_FAULTS.search(text):
            return DpdUnavailable(f"{op}: DPD fault: {text}", landed=None)
        return DpdFault(f"{op}: DPD refused the request: {text}", vendor_message=text)

    def _count(self, outcome: str, error: str | None, operation: str, started: float) -> None:
        connector_request(self.connector, outcome, error)
        if self.log is not None:
            fields = {"operation": operation, "elapsed_ms": round((time.monotonic() - started) * 1000)}
            if error is None:
                self.log.debug("dpd.request", **fields)
            else:
                self.log.warning("dpd.request_failed", error=error, **fields)
