"""The order of the steps, and nothing else: name -> model -> re-parameterize + verify -> complexity / export /
latency -> records.

Each step hands the next a plain value. A sweep over many models records a failure as data and goes on.

- :mod:`~mobileone_bench.pipeline.job`: the :class:`LatencyJob`, built once from the options;
- :mod:`~mobileone_bench.pipeline.preparing`: build, re-parameterize, verify, profile;
- :mod:`~mobileone_bench.pipeline.artifacts`: the artifact a runtime measures (a format built from another, as
  TensorRT from ONNX, is table data of :mod:`mobileone_bench.formats`);
- :mod:`~mobileone_bench.pipeline.recording`: **the only place records are made**, for host, cluster and phone;
- :mod:`~mobileone_bench.pipeline.loading`, :mod:`~mobileone_bench.pipeline.measure`,
  :mod:`~mobileone_bench.pipeline.interleaved`: timing on this host (blocked, interleaved rounds, memory groups);
- :mod:`~mobileone_bench.pipeline.run`: profile + latency over a list of models, each built once;
- executors that only turn jobs into samples: this process (the modules above), a Ray cluster
  (:mod:`~mobileone_bench.pipeline.cluster`), an iPhone or a Mac (:mod:`~mobileone_bench.pipeline.phone`);
- :mod:`~mobileone_bench.pipeline.study` and :mod:`~mobileone_bench.pipeline.peak`: the API's ``run``/``ablate``
  orchestration and the measured peak of ``roofline``.

The names below are the pipeline's public surface (what the API uses); the submodules import each other directly,
never through this package.
"""

from __future__ import annotations

from mobileone_bench.pipeline.job import DEFAULT_MEMORY_BUDGET_GB, LatencyJob, replace_protocol
from mobileone_bench.pipeline.loading import release_memory, resident_gb
from mobileone_bench.pipeline.measure import measure_latency, measure_models
from mobileone_bench.pipeline.preparing import PROXY_FIELDS, Prepared, prepare, profile, profile_identity, profile_record
from mobileone_bench.pipeline.recording import (
    UNAVAILABLE_PREFIX,
    failure_message,
    flagged,
    is_unavailable,
    latency_identity,
)
from mobileone_bench.pipeline.run import run_models

__all__ = ["Prepared", "prepare", "profile", "PROXY_FIELDS", "LatencyJob", "replace_protocol", "latency_identity",
           "measure_latency", "measure_models", "profile_identity", "profile_record", "run_models", "is_unavailable",
           "UNAVAILABLE_PREFIX", "flagged", "failure_message", "DEFAULT_MEMORY_BUDGET_GB", "release_memory",
           "resident_gb"]
