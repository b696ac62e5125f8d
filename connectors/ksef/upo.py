"""The UPO (urzędowe poświadczenie odbioru: the official receipt of an invoice) as a checked XML document.

A UPO is evidence the seller keeps for years, so what the hub stores must be what it claims to be:
well-formed XML, parsed with entities, DTDs and the network off, and a document carrying a DOCTYPE (the way
to an entity bomb or an external entity) refused outright; its root ``Potwierdzenie`` in a UPO namespace;
and a v4-3 UPO valid against the vendored schema (xsd/upo-v4-3.xsd) once two misprints of the Ministry's own
material are set aside (xsd/README.md): the XAdES ``ds:Signature`` the schema has no place for, and the test
environment's suffix on the fixed ``NazwaPodmiotuPrzyjmujacego``. A UPO of a newer schema (another
namespace) is checked for well-formedness only.
"""

from __future__ import annotations

import copy
from pathlib import Path

from lxml import etree

from hub.kernel.errors import PermanentError
from hub.platform.xsd import per_thread

XSD = Path(__file__).parent / "xsd" / "upo-v4-3.xsd"
UPO_NS_PREFIX = "http://upo.schematy.mf.gov.pl/KSeF/"
UPO_V43 = "http://upo.schematy.mf.gov.pl/KSeF/v4-3"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
RECEIVER = "Ministerstwo Finansów"  # NazwaPodmiotuPrzyjmujacego's fixed value
DOCTYPE_REFUSED = ("the UPO carries a DOCTYPE (refused: entity declarations, the way to an entity bomb or an "
                   "external entity, have no place in a receipt)")


class InvalidUpo(PermanentError):
    """What KSeF sent as a UPO is not one (or not a safe one to keep)."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                           remove_pis=False)


def schema() -> etree.XMLSchema:
    """The UPO v4-3 schema, compiled once per thread and one thread at a time (hub.platform.xsd)."""
    return per_thread("ksef:upo", lambda: etree.XMLSchema(etree.parse(str(XSD), _parser())))


def parse(content: bytes) -> etree._Element:
    """The UPO's root; InvalidUpo for a document that is not well-formed or carries a DOCTYPE (refused before
    parsing when it is plainly there, and after parsing whatever its encoding)."""
    if b"<!DOCTYPE" in content[:65536]:
        raise InvalidUpo(DOCTYPE_REFUSED)
    try:
        root = etree.fromstring(content, _parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidUpo(f"the UPO is not well-formed XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise InvalidUpo(DOCTYPE_REFUSED)
    return root


def schema_problems(root: etree._Element) -> list[str]:
    """What the v4-3 schema says of the UPO, the two known misprints aside (empty: valid)."""
    document = copy.deepcopy(root)
    for signature in document.findall(f"{{{DSIG}}}Signature"):
        document.remove(signature)
    name = document.find(f"{{{UPO_V43}}}NazwaPodmiotuPrzyjmujacego")
    if name is not None and (name.text or "").strip().startswith(RECEIVER):
        name.text = RECEIVER
    checker = schema()
    if checker.validate(document):
        return []
    return [f"line {error.line}: {error.message}" for error in checker.error_log]


def check(content: bytes, *, validate: bool = True) -> etree._Element:
    """The UPO's root once it passed the checks above; InvalidUpo (a PermanentError) naming what failed."""
    root = parse(content)
    qname = etree.QName(root)
    if qname.localname != "Potwierdzenie" or not (qname.namespace or "").startswith(UPO_NS_PREFIX):
        raise InvalidUpo(f"the document is {qname.text}, not a UPO (Potwierdzenie in {UPO_NS_PREFIX}...)")
    if validate and qname.namespace == UPO_V43:
        problems = schema_problems(root)
        if problems:
            raise InvalidUpo("the UPO does not match the UPO v4-3 schema: " + "; ".join(problems[:5]))
    return root


def documents(root: etree._Element) -> list[dict[str, str]]:
    """Each ``Dokument`` of a UPO as {element name: text}: the KSeF number, the hash, the invoice number..."""
    ns = etree.QName(root).namespace
    out = []
    for document in root.findall(f"{{{ns}}}Dokument"):
        out.append({etree.QName(child).localname: (child.text or "").strip() for child in document})
    return out
