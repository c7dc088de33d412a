"""Layered settings: ``base`` for everything shared, then ``dev``, ``test`` and ``prod``."""
