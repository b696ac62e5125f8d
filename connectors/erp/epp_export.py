"""EDI++ as an accountant's export (``hub invoices export --format epp``): the month's issued invoices in one
``.epp`` file for InsERT's Subiekt (positions) or Rewizor (VAT tables), the format's rules in ``epp``.

Registered as the entry point ``hub.connectors:epp``. With no section of its own the export uses the
defaults and the seller from [invoicing.seller]; a section sets its options::

    [connectors.rewizor]
    kind = "epp"
    target = "rewizor"        # or "subiekt" (the default)
    place = "Poznań"
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, BinaryIO

from hub.kernel.ports.capability import Capability
from hub.kernel.ports.invoicing import ExportSeller, RegisterInvoice
from hub.platform.registry import ConnectorSpec

from .epp import EppOptions, EppSender, write_invoices


class EppInvoiceExport:
    suffix = ".epp"

    def __init__(self, name: str, options: EppOptions) -> None:
        self.name = name
        self.options = options

    def write(self, handle: BinaryIO, seller: ExportSeller, invoices: Iterable[RegisterInvoice], *,
              now: datetime) -> int:
        options = self.options
        if not options.sender.nip:  # the file's sender is the seller the invoices name
            options = options.model_copy(update={"sender": EppSender(
                name=seller.name, nip=seller.nip, street=seller.street, city=seller.city,
                postal_code=seller.postal_code)})
        return write_invoices(handle, options, invoices, now)


def _factory(name: str, options: Any, _services: Any) -> EppInvoiceExport:
    return EppInvoiceExport(name, options if isinstance(options, EppOptions) else EppOptions.model_validate(options))


SPEC = ConnectorSpec(
    kind="epp",
    role="export",
    description="EDI++ (InsERT Subiekt and Rewizor): issued invoices and corrections for the accountant",
    capabilities=frozenset({Capability.ACCOUNTING_EXPORT}),
    factory=_factory,
    options_model=EppOptions,
)
