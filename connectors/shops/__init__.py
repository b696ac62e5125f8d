"""Own-shop connectors (SalesChannel), one subpackage per shop platform."""
