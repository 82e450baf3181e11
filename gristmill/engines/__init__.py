"""Where SQL runs: a small core protocol with optional capabilities, one folder per engine, and
the registry of engine kinds."""

from gristmill.engines.base import Engine, Relation
from gristmill.engines.registry import lake_snapshot, no_data_yet, open_engine

__all__ = ["Engine", "Relation", "lake_snapshot", "no_data_yet", "open_engine"]
