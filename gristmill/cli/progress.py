"""A run's progress as it happens: in a terminal, a spinner per running step under a `7/19`
counter; elsewhere (CI logs, pipes), one line per finished step with the same counter."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from gristmill.cli.render import STATUS_STYLE
from gristmill.workspace.types import RunStarted, RunStopping, StepFinished, StepRetrying, StepStarted


class RunProgress:
    """Listens to a run's events. ``quiet`` shows nothing but retries and a stop being acted on (a
    person watching a quiet run still learns why it is slow, and that Ctrl-C was heard); ``notes``
    is where those go."""

    def __init__(self, console: Console, notes: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.notes = notes
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self.lines = not console.is_terminal and not quiet
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not self.live,
        )
        self.tasks: dict[str, TaskID] = {}
        self.total = 0
        self.done = 0
        self.counter: TaskID | None = None

    def __enter__(self) -> RunProgress:
        self.progress.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.progress.__exit__(kind, error, trace)

    @property
    def count(self) -> str:
        width = len(str(self.total))
        return f"{self.done:>{width}}/{self.total}"

    def listen(self, event: object) -> None:
        if isinstance(event, RunStarted):
            self.total = len(event.plan.builds)
            if self.live and self.total:
                self.counter = self.progress.add_task(f"[bold]{self.count}[/] steps")
        elif isinstance(event, StepStarted):
            verb = "loading" if event.kind == "source" else "building"
            self.tasks[event.asset] = self.progress.add_task(
                f"{verb} {escape(event.asset)} [dim]({escape(event.reason)})[/]"
            )
        elif isinstance(event, StepFinished):
            self._finished(event)
        elif isinstance(event, StepRetrying):
            if event.asset in self.tasks:
                self.progress.remove_task(self.tasks.pop(event.asset))
            self.notes.print(
                f"[yellow]retrying[/] {escape(event.asset)} in {event.delay:.1f}s "
                f"(attempt {event.attempt} failed: {escape(event.error)})",
                highlight=False,
                soft_wrap=True,
            )
        elif isinstance(event, RunStopping):
            # Said at once, so a Ctrl-C or a cancel is seen to be acted on.
            stopping = f": stopping {', '.join(event.running)} (rolls back)" if event.running else ""
            self.notes.print(
                f"[magenta]Run {event.run_id} stopping[/] ({escape(event.reason)}){escape(stopping)}",
                highlight=False,
                soft_wrap=True,
            )

    def _finished(self, event: StepFinished) -> None:
        step = event.result
        if step.asset in self.tasks:
            self.progress.remove_task(self.tasks.pop(step.asset))
        if step.action != "build":
            return
        self.done += 1
        if self.counter is not None:
            self.progress.update(self.counter, description=f"[bold]{self.count}[/] steps")
        if self.lines:
            rows = "" if step.rows is None else f", {step.rows:,} rows"
            seconds = f" ({step.seconds:.2f} s{rows})" if step.status in ("success", "failed") else ""
            line = Text(f"[{self.count}] ")
            line.append(step.status, style=STATUS_STYLE.get(step.status, ""))
            line.append(f" {step.asset}{seconds}")
            self.console.print(line, highlight=False, soft_wrap=True)
