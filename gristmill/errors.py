"""Every error Gristmill raises on purpose.

    GristmillError                 base; ``str(err)`` is the whole user-facing message
    ├── ProjectError               the project folder is wrong (file:line in the message)
    │   ├── ConfigError            gristmill.toml or a YAML file is malformed or invalid
    │   ├── SQLError               a model's SQL cannot be parsed or validated (file:line:col)
    │   ├── SelectionError         a ``-s`` selection matches nothing or is malformed
    │   └── CycleError             models depend on each other in a loop
    ├── SourceError                a source cannot be read (names the source, table, file)
    │   ├── ContractViolation      the source's schema changed against the table's contract
    │   ├── ShrinkRefused          a replace would have emptied (or shrunk) a table too far
    │   └── Missing                a REST response lacks a path the source names
    ├── BadQuery                   a metric query names a dimension, grain or filter it cannot take
    ├── EngineError                the engine rejected a statement (names the asset)
    ├── CheckFailed                a blocking check failed; the previous version stays live
    ├── ConcurrentRunError         another process is running this project
    ├── StepTimeout                an attempt ran past its time limit
    ├── RunCancelled               the run was cancelled
    ├── SqlRefused                 free read-only SQL the guard does not let through
    ├── StatementTimeout           free SQL ran past the server's statement timeout
    ├── Fenced / Unassigned        a stream process lost (or never got) its partitions
    ├── StateError                 the state store cannot be opened or migrated
    └── KeyRefused                 an API key is malformed, unknown, expired or revoked

Each error is also Transient (worth retrying) or Terminal (retrying cannot help); the
runtime decides retries from these markers, never from message text.
"""

from __future__ import annotations


class Transient:
    """Marker: the same call may succeed later (network, lock, busy server)."""


class Terminal:
    """Marker: retrying cannot help until the user changes something."""


class GristmillError(Exception):
    """Base of every error raised on purpose. The message says what, where and what to do."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


class ProjectError(GristmillError, Terminal):
    """The project folder declares something wrong."""

    def __init__(self, message: str, *, location: str | None = None, hint: str | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message, hint=hint)


class ConfigError(ProjectError):
    """A configuration file is malformed or holds an invalid value."""


class SQLError(ProjectError):
    """A model's SQL cannot be parsed or refers to something that does not exist."""


class SelectionError(ProjectError):
    """A selection expression is malformed or matches nothing."""


class CycleError(ProjectError):
    """Assets depend on each other in a loop."""


class TransientModelError(GristmillError, Transient):
    """A Python model raised an error that may pass on retry (a dropped connection, a timeout)."""

    def __init__(self, message: str, *, location: str | None = None, hint: str | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message, hint=hint)


class SourceError(GristmillError, Terminal):
    """A source cannot be read."""


class TransientSourceError(SourceError, Transient):
    """A source failed in a way that may pass on retry (timeouts, busy servers)."""


class ContractViolation(SourceError):
    """The source's schema changed in a way the table's contract does not allow."""


class ShrinkRefused(SourceError):
    """A ``replace`` would have emptied a table (or removed more of it than ``max_shrink``)."""


class Missing(SourceError):
    """A path names a key the (REST) response body does not have."""


class BadQuery(GristmillError, Terminal):
    """A query of served data (a metric's dimensions, grain or filters) asks for something that
    is not there; ``parameter`` names what to change (an HTTP 400 says it in its body)."""

    def __init__(self, message: str, *, parameter: str, hint: str | None = None) -> None:
        self.parameter = parameter
        super().__init__(message, hint=hint)


class EngineError(GristmillError, Terminal):
    """The engine rejected a statement."""


class MissingCapability(EngineError):
    """The project's engine lacks an optional capability (``engines/base.py``) that this work
    needs and that has no fallback yet; the message names both."""


class CheckFailed(GristmillError, Terminal):
    """A blocking check failed, so the new version of an asset was not published."""


class ConcurrentRunError(GristmillError, Transient):
    """Another process holds this project's run lock."""


class StepTimeout(GristmillError, Transient):
    """An attempt ran past its time limit and was stopped."""


class RunCancelled(GristmillError, Terminal):
    """The run was cancelled (Ctrl-C, ``gristmill cancel``, or the run's time limit)."""


class SqlRefused(GristmillError, Terminal):
    """Free SQL (``POST /api/v1/sql``, the PostgreSQL wire door) the guard does not let through,
    or that the engine rejected; the message says which rule and what to do."""


class StatementTimeout(GristmillError, Terminal):
    """Free SQL ran past the server's statement timeout and was interrupted."""


class Fenced(GristmillError):
    """Another process committed a partition this one was processing (a rebalance it missed)."""


class Unassigned(GristmillError):
    """``--stop-when-idle``: the broker gave this process nothing to read for the idle time."""


class StateError(GristmillError, Terminal):
    """The state store cannot be opened, read or migrated."""


class KeyRefused(GristmillError, Terminal):
    """An API key is malformed, unknown, expired or revoked (the message never holds the key)."""


class RateLimited(GristmillError, Transient):
    """A caller went past its API key's rate (the wire door: per statement, SQLSTATE 53400)."""


class ReadError(GristmillError):
    """A read a client of ``gristmill serve`` asked for and cannot have (an unknown snapshot, no
    time travel, a table that is not served): the server answers HTTP 400 with its message."""


class PolicyRefusal(ProjectError):
    """A query reads something its principal may not, or something the policy rewrite cannot
    police (table functions, file readers, catalogs, statements other than SELECT)."""
