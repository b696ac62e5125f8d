"""The kernel: what every part of the hub shares and nothing else of the hub: the ports connectors
implement and the value types they exchange, Polish VAT codes, the clock and the error classes.
It imports nothing else of ``hub``."""
