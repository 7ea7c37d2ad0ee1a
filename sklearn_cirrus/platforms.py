"""What a serverless platform offers and charges: data, which the user may replace.

A :class:`Platform` is a price table and the rules that turn a worker's memory into its
CPU share; ``fit_report_`` prices every fit with :data:`AWS_LAMBDA`, and
``estimator.plan(X, platform=...)`` predicts on any. Another region, an ARM price, a
negotiated discount: ``dataclasses.replace(AWS_LAMBDA, usd_per_gb_second=...)``, or
``Platform.from_dict`` of a JSON file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Platform:
    """A serverless platform's prices and sizes.

    Attributes
    ----------
    name : str
    usd_per_gb_second : float
        Compute price, per GB of configured memory and second of an invocation's run.
    usd_per_invocation : float
        Request price, per invocation.
    memory_sizes_mb : tuple of int
        The memory sizes a plan considers (the platform may allow others between).
    mb_per_vcpu : float
        Memory that buys one full vCPU: a function gets ``memory / mb_per_vcpu`` vCPUs,
        all its threads together (with less, a fraction of one, as a CPU quota).
    cold_start_seconds : float
        The start of an invocation on a new instance, before the worker's code runs.
    """

    name: str
    usd_per_gb_second: float
    usd_per_invocation: float
    memory_sizes_mb: tuple[int, ...]
    mb_per_vcpu: float
    cold_start_seconds: float

    def vcpus(self, memory_mb: float) -> float:
        """The vCPUs a function of ``memory_mb`` gets, all its threads together."""
        return memory_mb / self.mb_per_vcpu

    def cost_usd(self, gb_seconds: float, invocations: float) -> float:
        return gb_seconds * self.usd_per_gb_second + invocations * self.usd_per_invocation

    @classmethod
    def from_dict(cls, values: dict) -> Platform:
        """A platform from a mapping of its fields (a JSON file's, say)."""
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown Platform fields {sorted(unknown)}")
        return cls(**{**values, "memory_sizes_mb": tuple(values["memory_sizes_mb"])})

    def to_dict(self) -> dict:
        return asdict(self)


# AWS Lambda, x86, us-east-1, as published (aws.amazon.com/lambda/pricing): 1,769 MB is
# one vCPU's worth of memory (docs.aws.amazon.com/lambda/latest/dg/configuration-memory);
# the cold start is an assumption for a Python runtime with numpy and scipy loaded
AWS_LAMBDA = Platform(
    name="AWS Lambda (x86, us-east-1)",
    usd_per_gb_second=0.0000166667,
    usd_per_invocation=0.20 / 1_000_000,
    memory_sizes_mb=(512, 1024, 1769, 3008),
    mb_per_vcpu=1769.0,
    cold_start_seconds=0.5,
)
