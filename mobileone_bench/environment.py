"""The environment a number was produced in: machine, OS, runtime and library versions, GPU.

Versions are read from package metadata (no heavy import); the GPU is queried only when asked for.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from typing import Any

from mobileone_bench._version import __version__

__all__ = ["library_versions", "cpu_info", "gpu_info", "collect", "machine_fingerprint"]

_LIBRARIES = ("torch", "torchvision", "timm", "onnx", "onnxruntime", "coremltools", "tensorrt", "executorch", "torchao",
              "numpy")


def library_versions(names: tuple[str, ...] = _LIBRARIES) -> dict[str, str | None]:
    """Installed version of each library (``None`` when missing)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    if out.get("onnxruntime") is None:
        for alt in ("onnxruntime-gpu", "onnxruntime-silicon"):
            try:
                out["onnxruntime"] = metadata.version(alt)
                break
            except metadata.PackageNotFoundError:
                pass
    return out


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """CPU model, logical and physical cores, ISA flags worth knowing for timing (AVX2/AVX-512/NEON)."""
    model = platform.processor() or platform.machine()
    physical = None
    flags: list[str] = []
    if sys.platform.startswith("linux") and os.path.exists("/proc/cpuinfo"):
        try:
            text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
            m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
            if m:
                model = m.group(1).strip()
            cores = {(p, c) for p, c in re.findall(r"physical id\s*:\s*(\d+).*?core id\s*:\s*(\d+)", text, re.S)}
            physical = len(cores) or None
            fm = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
            if fm:
                have = set(fm.group(1).split())
                flags = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "amx_tile") if f in have]
        except OSError:
            pass
    elif sys.platform == "darwin":
        model = _run(["sysctl", "-n", "machdep.cpu.brand_string"]) or model
        phys = _run(["sysctl", "-n", "hw.physicalcpu"])
        physical = int(phys) if phys and phys.isdigit() else None
    return {"cpu": model, "cores_logical": os.cpu_count(), "cores_physical": physical, "cpu_flags": ",".join(flags)}


def _run(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def gpu_info() -> dict[str, Any]:
    """Name, driver, CUDA and compute capability of GPU 0, or empty values when there is none."""
    info: dict[str, Any] = {"gpu": None, "gpu_driver": None, "cuda": None, "gpu_capability": None}
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["cuda"] = torch.version.cuda
            major, minor = torch.cuda.get_device_capability(0)
            info["gpu_capability"] = f"{major}.{minor}"
    except Exception:  # noqa: BLE001 - a broken CUDA install is "no GPU" for the record
        pass
    smi = _run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"])
    if smi:
        name, _, driver = smi.splitlines()[0].partition(",")
        info["gpu"] = info["gpu"] or name.strip()
        info["gpu_driver"] = driver.strip() or None
    return info


def machine_fingerprint() -> str:
    """A short stable id of this machine (host, CPU, OS): measurements from different machines never mix."""
    cpu = cpu_info()
    raw = "|".join([platform.node(), str(cpu["cpu"]), str(cpu["cores_logical"]), platform.system(),
                    platform.machine()])
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def collect(*, gpu: bool = False) -> dict[str, Any]:
    """Everything worth recording beside a measurement, as flat ``env_*`` fields."""
    env: dict[str, Any] = {
        "env_machine": machine_fingerprint(),
        "env_hostname": platform.node(),
        "env_os": platform.platform(),
        "env_python": platform.python_version(),
        "env_tool": __version__,
    }
    env.update({f"env_{k}": v for k, v in cpu_info().items()})
    env.update({f"env_{k}": v for k, v in library_versions().items()})
    if gpu:
        env.update({f"env_{k}": v for k, v in gpu_info().items()})
    return env
