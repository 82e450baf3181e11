"""The shape every engine's ``transaction()`` shares: one transaction, or with ``group`` a part of
the one grouped steps share, left open after success until ``commit()``; any error rolls back.

Each engine says only how a transaction begins (``_begin``), commits and rolls back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class TransactionScope:
    _open: bool
    _interrupted: bool

    def _begin(self) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    @contextmanager
    def transaction(self, *, group: bool = False) -> Iterator[None]:
        # An interrupt is for the step it was sent to: one that came after that step ended (a late
        # time limit) must not fail the next step, which may join the open transaction.
        self._interrupted = False
        if not self._open:
            self._begin()
            self._open = True
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        if not group:
            self.commit()
