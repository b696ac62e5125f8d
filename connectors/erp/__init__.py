"""ERP connectors (ErpSource): the seller's source of truth for products, stock, costs and prices."""
