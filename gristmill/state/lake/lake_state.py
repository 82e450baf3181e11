"""What planning reads from the lake, remembered between runs.

Recorded versions, environment pointers and table columns change only when the lake commits.
The run history keeps a copy tagged with the lake's snapshot; while the lake's current snapshot is
still that one, a plan needs neither the engine nor the catalog attached — a run with nothing to
do costs milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from gristmill.engines.base import Engine
from gristmill.plan.planner import Recorded
from gristmill.state.lake.environments import read_all_pointers
from gristmill.state.lake.versions import read_versions


@dataclass(frozen=True)
class LakeState:
    versions: dict[str, Recorded] = field(default_factory=dict)
    """physical table -> its recorded version"""
    pointers: dict[str, dict[str, str]] = field(default_factory=dict)
    """environment -> asset -> physical table"""
    columns: dict[str, list[str]] = field(default_factory=dict)
    """``schema.table`` -> column names, for every table and view in the lake"""

    @classmethod
    def read(cls, engine: Engine) -> LakeState:
        return cls(
            read_versions(engine),
            read_all_pointers(engine),
            {str(rel): [c for c, _ in cols] for rel, cols in engine.columns().items()},
        )

    def env(self, name: str) -> dict[str, str]:
        return self.pointers.get(name, {})

    def to_json(self) -> str:
        versions = {
            k: [v.fingerprint, v.parts, v.run_id, v.rows, v.built_at] for k, v in self.versions.items()
        }
        return json.dumps({"versions": versions, "pointers": self.pointers, "columns": self.columns})

    @classmethod
    def from_json(cls, text: str) -> LakeState:
        data = json.loads(text)
        versions = {k: Recorded(*v) for k, v in data["versions"].items()}
        return cls(versions, data["pointers"], data["columns"])
