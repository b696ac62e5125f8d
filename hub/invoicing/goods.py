"""mappings/invoicing.toml: what only the seller knows of their goods for invoices (Annex 15 goods, units)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from hub.platform.mappings import register_schema


class InvoicingFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    annex15_skus: frozenset[str] = frozenset()
    annex15_prefixes: tuple[str, ...] = ()
    units: dict[str, str] = Field(default_factory=dict)

    def annex15(self, sku: str | None) -> bool:
        """Whether a SKU is Annex 15 goods (split payment over the threshold)."""
        return sku is not None and (sku in self.annex15_skus or sku.startswith(self.annex15_prefixes))

    def unit(self, sku: str | None) -> str:
        return self.units.get(sku or "", "szt.")


register_schema("invoicing.toml", InvoicingFile)
