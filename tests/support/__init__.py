"""What the tests share: a throwaway PostgreSQL server, fake connectors, helper processes."""
