"""The commands the ``mobileone-bench`` group exposes: each module listed here provides ``COMMANDS``."""

from __future__ import annotations

import importlib

_MODULES = ["models", "export", "latency", "analysis", "results", "run", "report", "evaluate", "explain"]

ALL = [cmd for name in _MODULES for cmd in importlib.import_module(f"mobileone_bench.cli.{name}").COMMANDS]
