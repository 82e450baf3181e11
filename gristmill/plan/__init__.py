"""Pure planning: the asset graph, selection, fingerprints, and the plan of steps with reasons."""

from gristmill.plan.graph import Asset, AssetGraph, build_graph
from gristmill.plan.planner import Plan, Recorded, Step, make_plan
from gristmill.plan.selection import select

__all__ = ["Asset", "AssetGraph", "Plan", "Recorded", "Step", "build_graph", "make_plan", "select"]
