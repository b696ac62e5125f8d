"""Connectors: one package per outside system, each implementing a port from hub.kernel.ports.

A connector holds vendor knowledge only (client I/O, pure payload mapping, the
port implementation, its simulator) and registers itself through the
``hub.connectors`` entry-point group in pyproject.toml.
"""
