"""The ``hub`` admin command line."""
