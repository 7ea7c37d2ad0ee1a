"""What a worker invocation reports back to the driver."""

from __future__ import annotations

from dataclasses import dataclass, field

# where a worker's time goes, as reported to the driver
PHASES = ("io", "pull", "compute", "push")


@dataclass
class WorkerReport:
    """What one invocation did. ``shards_done`` counts the leading task shards finished."""

    shards_done: int = 0
    samples: int = 0
    steps: int = 0
    loss_sum: float = 0.0
    seconds: dict = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    wall_seconds: float = 0.0
    # the CPU time of the worker's process meanwhile, all its threads (what a CPU quota
    # counts; with workers in one process, all of theirs)
    cpu_seconds: float = 0.0
    peak_memory_mb: float = 0.0
    stopped_by: str = "done"
    # stopped by its budget inside a shard: the rows of it done (the next invocation's
    # first_row), counted from the shard's start
    rows_into_shard: int = 0

    def absorb(self, other: WorkerReport) -> None:
        """Add ``other``'s work to this one: the driver's running total of a fit."""
        self.samples += other.samples
        self.steps += other.steps
        self.loss_sum += other.loss_sum
        self.wall_seconds += other.wall_seconds
        self.cpu_seconds += other.cpu_seconds
        self.peak_memory_mb = max(self.peak_memory_mb, other.peak_memory_mb)
        for phase, seconds in other.seconds.items():
            self.seconds[phase] += seconds

    def record(self, loss_sum: float, samples: int, steps: int) -> None:
        """Count work a trainer did: its summed losses, samples and optimizer steps."""
        self.loss_sum += loss_sum
        self.samples += samples
        self.steps += steps
