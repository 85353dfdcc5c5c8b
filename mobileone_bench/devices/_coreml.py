"""coremltools as both Core ML's exporter (:mod:`mobileone_bench.formats.coreml`) and its Mac runner use it, so the
runner never imports the exporter."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Any

__all__ = ["import_coremltools"]


def import_coremltools() -> Any:
    """Import coremltools without its import-time chatter (missing native proxies on Linux, untested torch)."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import coremltools as ct
    for name in ("coremltools", "coremltools.converters"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return ct
