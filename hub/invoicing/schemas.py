"""The Ministry's XML schemas (FA(3), JPK_FA(4)), compiled once per process from the package's copies
with the network and entities off: an absolute crd.gov.pl address in an import is mapped to the copy
beside it."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from hub.platform.xsd import per_thread

XSD_DIR = Path(__file__).parent / "xsd"
FA3_NS = "http://crd.gov.pl/wzor/2025/06/25/13775/"
ETD_NS = "http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/"


class _Local(etree.Resolver):
    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def resolve(self, url: str | None, pubid: str | None, context: object) -> object:
        if url and url.startswith(("http://crd.gov.pl/", "https://crd.gov.pl/")):
            name = url.rsplit("/", 1)[1]
            for candidate in (self.folder / name, self.folder / "bazowe" / name):
                if candidate.exists():
                    return self.resolve_filename(str(candidate), context)
        return None


def _compile(main: Path) -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    parser.resolvers.add(_Local(main.parent))
    return etree.XMLSchema(etree.parse(str(main), parser))


def _per_thread(name: str, main: Path) -> etree.XMLSchema:
    """One compiled schema per thread (8 ms to compile), compiled one thread at a time (hub.platform.xsd)."""
    return per_thread(f"invoicing:{name}", lambda: _compile(main))


def fa3() -> etree.XMLSchema:
    return _per_thread("fa3", XSD_DIR / "FA3" / "schemat_FA(3)_v1-0E.xsd")


def jpk_fa4() -> etree.XMLSchema:
    return _per_thread("jpk_fa4", XSD_DIR / "JPK_FA4" / "Schemat_JPK_FA(4)_v1-0.xsd")


SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def problems(schema: etree.XMLSchema, document: bytes | etree._Element) -> list[str]:
    """What the schema says is wrong with ``document`` (empty: valid), line by line."""
    tree = etree.fromstring(document, SAFE_PARSER) if isinstance(document, bytes) else document
    if schema.validate(tree):
        return []
    return [f"line {error.line}: {error.message}" for error in schema.error_log]
