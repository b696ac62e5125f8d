"""hub: keeps every sales channel in step with the seller's ERP.

The spine knows no vendor: connectors plug in through hub.kernel.ports and the
``hub.connectors`` entry-point group.
"""

__version__ = "0.1.0"
