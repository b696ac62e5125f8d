"""Invoicing: VAT invoices and corrective invoices numbered without gaps, their FA(3) documents
checked against the Ministry's schema, sent to KSeF exactly once with their KSeF numbers and official
receipts kept, and the exports accountants load."""
