"""What the CPU runtimes share: the default thread count and the precision they measure."""

from __future__ import annotations

from mobileone_bench.errors import UsageError

__all__ = ["default_threads", "require_fp32"]


def default_threads() -> int:
    """Physical cores if known, else logical ones (what onnxruntime itself picks by default)."""
    from mobileone_bench.environment import cpu_info

    info = cpu_info()
    return int(info.get("cores_physical") or info.get("cores_logical") or 1)


def require_fp32(precision: str) -> None:
    """onnxruntime and PyTorch eager on the CPU measure fp32 models only."""
    if precision != "fp32":
        raise UsageError(f"the CPU runtimes measure fp32 (asked: {precision})")
