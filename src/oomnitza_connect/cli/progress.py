"""How ``sync`` (and ``integrations launch``) show a run's progress.

On a terminal: a bar with the phase, done/total, percentage and ETA when the
vendor states how many users it has (Talkdesk's ``total``), else the count and
the rate; and, while the run stands still, why (paced to a rate budget, a
Retry-After, a retry). Off a terminal: one plain line on standard error per
batch, per phase and per new reason to wait, for logs.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..sync.engine import SyncProgress

__all__ = ["SyncProgressDisplay", "describe"]

_PLAIN_WAIT_REPEAT = 10.0
"""Seconds before a plain-text display repeats the same reason to wait."""

_UNITS = {"last logins": "last logins"}


def _unit(phase: str) -> str:
    return _UNITS.get(phase, "records")


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def describe(progress: SyncProgress, *, rate: float | None = None) -> str:
    """One line for *progress*: phase, done (of total, percent), rate and ETA, counts, wait."""
    phase = progress.phase.value
    if progress.phase == "connecting":
        # Nothing is counted before the listing: only why it waits is news.
        line = phase
        if progress.waiting is not None:
            line += f"; waiting {progress.waiting.seconds:.1f} s: {progress.waiting.reason}"
        return line
    unit = _unit(phase)
    parts = [f"{progress.done:,} {unit}"]
    if progress.total:
        done = min(progress.done, progress.total)
        parts[0] = f"{done:,} of {progress.total:,} {unit} ({100 * done // progress.total}%)"
    if rate:
        parts.append(f"{rate:,.0f}/s")
        if progress.total and progress.total > progress.done:
            parts.append(f"ETA {_clock((progress.total - progress.done) / rate)}")
    c = progress.counts
    parts.append(
        f"{c.created} created, {c.updated} updated, {c.unchanged} unchanged, "
        f"{c.skipped} skipped, {c.failed} failed"
    )
    line = f"{phase}: " + ", ".join(parts)
    if progress.waiting is not None:
        line += f"; waiting {progress.waiting.seconds:.1f} s: {progress.waiting.reason}"
    return line


class _Rate:
    """Items per second over the current phase (honest: measured, never guessed)."""

    def __init__(self) -> None:
        self.phase: object = None
        self.started = 0.0
        self.start_done = 0

    def __call__(self, progress: SyncProgress) -> float | None:
        now = time.monotonic()
        if progress.phase is not self.phase:
            self.phase, self.started, self.start_done = progress.phase, now, progress.done
            return None
        elapsed = now - self.started
        moved = progress.done - self.start_done
        return moved / elapsed if elapsed > 0.5 and moved > 0 else None


class SyncProgressDisplay:
    """The progress callback of a CLI sync; a context manager around the run.

    :param terminal: draw a live bar (standard error is a terminal) rather than
        plain lines.
    :param quiet: show nothing (``--json`` on a terminal keeps the screen clean).
    """

    def __init__(self, *, terminal: bool, quiet: bool = False) -> None:
        self.terminal = terminal and not quiet
        self.quiet = quiet
        self.bar: Any = None
        self.task: Any = None
        self.rate = _Rate()
        self.last_wait: tuple[str, float] | None = None

    def __enter__(self) -> SyncProgressDisplay:
        if self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("{task.fields[integration]}"),
                BarColumn(bar_width=24),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("starting", total=None, integration="sync")
        return self

    def update(self, progress: SyncProgress) -> None:
        if self.quiet:
            return
        rate = self.rate(progress)
        if self.bar is not None:
            self.bar.update(
                self.task,
                description=describe(progress, rate=rate),
                integration=progress.integration,
                total=progress.total,
                completed=progress.done,
            )
            return
        waiting = progress.waiting
        if waiting is not None:
            # Pacing pauses come before many requests: say so once, not each time.
            now = time.monotonic()
            if (
                self.last_wait is not None
                and self.last_wait[0] == waiting.reason
                and now - self.last_wait[1] < _PLAIN_WAIT_REPEAT
            ):
                return
            self.last_wait = (waiting.reason, now)
        click.echo(f"sync {progress.integration}: {describe(progress, rate=rate)}", err=True)

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc_info)
