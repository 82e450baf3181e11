"""What a backfill was asked to do, kept in the run history as data (JSON) so that a resume
continues it as it was asked.

Backfills recorded before the request was kept as data stored its command line's arguments
instead; ``BackfillRequest.stored`` still reads those."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BackfillRequest:
    selection: tuple[str, ...] = ()
    partitions: tuple[str, ...] | None = None
    """Of models split by declared values: these only (None: all of them)."""
    reprocess: str = "missing"
    chunk: int | None = None
    env: str = "prod"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Keys a newer version stored that this one does not know (kept, not lost)."""

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "selection": list(self.selection),
            "partitions": list(self.partitions) if self.partitions is not None else None,
            "reprocess": self.reprocess,
            "chunk": self.chunk,
            "env": self.env,
        }
        return json.dumps({**self.extra, **data}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BackfillRequest:
        data = json.loads(text)
        partitions = data.pop("partitions", None)
        return cls(
            selection=tuple(data.pop("selection", ())),
            partitions=tuple(partitions) if partitions is not None else None,
            reprocess=data.pop("reprocess", "missing"),
            chunk=data.pop("chunk", None),
            env=data.pop("env", "prod"),
            extra=data,
        )

    @classmethod
    def stored(cls, text: str) -> BackfillRequest:
        """The request as the history keeps it: JSON, or an older backfill's command line."""
        if text.startswith("{"):
            return cls.from_json(text)
        return cls._from_words(text.split())

    @classmethod
    def _from_words(cls, words: list[str]) -> BackfillRequest:
        """An older backfill's arguments: the selection, then ``--option value`` pairs."""
        options: dict[str, list[str]] = {}
        selection: list[str] = []
        for i, word in enumerate(words):
            if word.startswith("--"):
                options.setdefault(word, []).append(words[i + 1] if i + 1 < len(words) else "")
            elif not (i and words[i - 1].startswith("--")):
                selection.append(word)
        chunk = options.get("--chunk")
        return cls(
            selection=tuple(selection),
            partitions=tuple(options["--partition"]) if "--partition" in options else None,
            reprocess=options.get("--reprocess", ["missing"])[0],
            chunk=int(chunk[0]) if chunk else None,
            env=options.get("--env", ["prod"])[0],
        )

    def describe(self) -> str:
        """The request as listings show it: the arguments that would start it again."""
        words = [*self.selection]
        words += [w for p in self.partitions or () for w in ("--partition", p)]
        words += ["--reprocess", self.reprocess] if self.reprocess != "missing" else []
        words += ["--chunk", str(self.chunk)] if self.chunk else []
        words += ["--env", self.env] if self.env != "prod" else []
        return " ".join(words)
