"""The job: everything that defines one latency measurement, built once from the options and resolved once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LatencyJob", "replace_protocol", "DEFAULT_MEMORY_BUDGET_GB"]


@dataclass(frozen=True)
class LatencyJob:
    """Everything that defines one latency measurement of one model (see :func:`measure_latency`).

    Attributes:
        device: ``cpu``, ``gpu``, ``iphone`` or ``mac``.
        runtime: Runtime name (the device's default if ``None``).
        precision: ``fp32``/``fp16`` (the runtime's default if ``None``).
        warmup: Untimed runs (the runtime's default if ``None``).
        runs: Timed runs (the runtime's default if ``None``).
        threads: CPU threads (physical cores if ``None``; ignored on GPU).
        report: The statistic reported as "the latency" (the device's default if ``None``).
        runtime_options: Extra runtime settings (``graph_optimization``, ``cuda_graphs``...).
        input_size: Input size instead of the model's default.
        weights: Local checkpoint.
        reparameterize: Measure the inference-time form (the paper's way) or the train-time one.
        models_dir: Where artifacts are exported.
        protocol: ``blocked`` (each model's runs in one block, the paper's way, and the single-model path) or
            ``interleaved`` (several models in rounds, see :mod:`mobileone_bench.devices._rounds`); ``None``:
            interleaved when several models are measured together, blocked for one.
        rounds: Rounds of the interleaved protocol (``DEFAULT_ROUNDS`` if ``None``).
        seed: Seed of the interleaved visiting orders.
        max_extra_rounds: Interleaved: replacement rounds a model may get for its contended rounds (``None``: as
            many as ``rounds``; 0: flag only). Not part of the record's identity: it changes which rounds count,
            not what is measured.
        extra_time_share: Interleaved: the time all replacement rounds may take, as a share of the planned rounds'
            time (``None``: :data:`~mobileone_bench.devices._rounds.DEFAULT_EXTRA_TIME_SHARE`).
        memory_budget_gb: Interleaved: memory the loaded sessions of one group may add (``None``:
            :data:`DEFAULT_MEMORY_BUDGET_GB`; 0: one group whatever the memory). Not part of the identity.
    """

    device: str = "cpu"
    runtime: str | None = None
    precision: str | None = None
    warmup: int | None = None
    runs: int | None = None
    threads: int | None = None
    report: str | None = None
    runtime_options: tuple[tuple[str, Any], ...] = ()
    input_size: tuple[int, int] | None = None
    weights: str | None = None
    reparameterize: bool = True
    models_dir: str = "models"
    protocol: str | None = None
    rounds: int | None = None
    seed: int = 0
    max_extra_rounds: int | None = None
    extra_time_share: float | None = None
    memory_budget_gb: float | None = None

    def resolved(self) -> "LatencyJob":
        """The job with every default filled in, after checking the combination makes sense."""
        from mobileone_bench.devices import get_runtime
        from mobileone_bench.errors import UsageError
        from mobileone_bench.stats import REPORTS

        rt = get_runtime(self.device, self.runtime)
        precision = self.precision or rt.default_precision
        if precision not in rt.precisions:
            raise UsageError(f"{rt.name} on {rt.device} cannot run {precision} (supported: {', '.join(rt.precisions)})")
        report = self.report or rt.default_report
        if report not in REPORTS:
            raise UsageError(f"unknown statistic {report!r}; choose from {', '.join(REPORTS)}")
        warmup = rt.default_warmup if self.warmup is None else self.warmup
        runs = rt.default_runs if self.runs is None else self.runs
        if warmup < 0 or runs < 1:
            raise UsageError("--warmup must be >= 0 and --runs >= 1")
        threads = self.threads
        if self.device == "cpu":
            from mobileone_bench.devices import default_threads

            threads = default_threads() if threads is None else threads
            if threads < 1:
                raise UsageError("--threads must be >= 1")
        else:
            threads = None
        from dataclasses import replace

        from mobileone_bench.devices._rounds import DEFAULT_ROUNDS

        if self.protocol not in (None, "blocked", "interleaved"):
            raise UsageError(f"unknown protocol {self.protocol!r}; choose blocked or interleaved")
        from mobileone_bench.devices._rounds import DEFAULT_EXTRA_TIME_SHARE

        rounds = DEFAULT_ROUNDS if self.rounds is None else self.rounds
        if rounds < 1:
            raise UsageError("--rounds must be >= 1")
        rounds = min(rounds, runs)
        extra = rounds if self.max_extra_rounds is None else self.max_extra_rounds
        share = DEFAULT_EXTRA_TIME_SHARE if self.extra_time_share is None else self.extra_time_share
        if extra < 0:
            raise UsageError("--max-extra-rounds must be >= 0")
        if not share >= 0:
            raise UsageError("--extra-time must be >= 0")
        return replace(self, runtime=rt.name, precision=precision, warmup=warmup, runs=runs, threads=threads,
                       report=report, rounds=rounds, max_extra_rounds=extra, extra_time_share=float(share))

    def for_models(self, n: int) -> "LatencyJob":
        """The job with its protocol decided for ``n`` models measured together (interleaved for more than one)."""
        from dataclasses import replace

        if self.protocol is not None:
            return self
        return replace(self, protocol="interleaved" if n > 1 else "blocked")


def replace_protocol(job: LatencyJob, protocol: str) -> LatencyJob:
    from dataclasses import replace

    return replace(job, protocol=protocol)


#: Memory the runtime sessions of one interleaved group may add to the process (GB): past it, the models loaded so
#: far are timed together and released before the next are loaded (``run --zoo paper-table9``: two groups on the
#: 2-core development VM, peak 2.3 GB instead of 2.8; the quick zoo stays one group). 0: no limit.
DEFAULT_MEMORY_BUDGET_GB = 0.8
