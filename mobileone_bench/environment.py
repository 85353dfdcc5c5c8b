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

__all__ = ["library_versions", "cpu_info", "gpu_info", "collect", "machine_fingerprint", "theoretical_peak"]

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
    for name in DISTRIBUTIONS:
        if name in out and out[name] is None:
            found = installed_distribution(name)
            out[name] = found["version"] if found else None
    return out


#: The distributions that provide an importable library under another name: ``import onnxruntime`` from
#: ``onnxruntime-gpu``; ``import tensorrt`` from ``tensorrt-cu12`` (no ``tensorrt`` distribution then) or from its
#: bindings/libs wheels. The library's own name is tried first.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-silicon"),
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt-cu13-bindings",
                 "tensorrt-cu12-bindings", "tensorrt-cu11-bindings", "tensorrt-bindings", "tensorrt-cu13-libs",
                 "tensorrt-cu12-libs", "tensorrt-cu11-libs", "tensorrt-libs"),
}


def installed_distribution(library: str) -> dict[str, str] | None:
    """``{"distribution", "version"}`` of the first installed distribution that provides ``library``
    (:data:`DISTRIBUTIONS`; the library's own name otherwise), or ``None``."""
    for name in DISTRIBUTIONS.get(library, (library,)):
        try:
            return {"distribution": name, "version": metadata.version(name)}
        except metadata.PackageNotFoundError:
            continue
    return None


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


def _cpuinfo_field(text: str, name: str) -> str | None:
    m = re.search(rf"^{name}\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else None


#: fp32 lanes of one FMA instruction of each vector ISA the tool recognises.
_LANES = (("avx512f", 16, "AVX-512"), ("avx2", 8, "AVX2"), ("asimd", 4, "NEON"), ("neon", 4, "NEON"),
          ("sse2", 4, "SSE2"))


def _fma_units(vendor: str, family: int | None, isa: str, model_name: str, machine: str) -> tuple[float | None, str]:
    """(fused multiply-add instructions per cycle and core at the ISA's width, why). A small table: the core's FMA
    pipes are not reported by the operating system."""
    low = model_name.lower()
    if vendor == "AuthenticAMD" and family is not None:
        if family >= 0x1A:
            return 2.0, "AMD family 0x1A (Zen 5): two 512-bit FMA pipes"
        if family == 0x19 and isa == "AVX-512":
            return 1.0, ("AMD family 0x19 with AVX-512 (Zen 4): two 256-bit FMA pipes, i.e. one 512-bit FMA per "
                         "cycle")
        if family in (0x17, 0x19):
            return 2.0, "AMD family 0x17/0x19 (Zen 2/3): two 256-bit FMA pipes"
    if vendor == "GenuineIntel" and isa == "AVX-512":
        if re.search(r"gold 5\d{3}|silver|bronze", low):
            return 1.0, "Intel Xeon Gold 5xxx / Silver / Bronze: one AVX-512 FMA unit"
        return 2.0, "Intel AVX-512 core, assumed two FMA units (Xeon Gold 6xxx, Platinum; Gold 5xxx has one)"
    if vendor == "GenuineIntel" and isa == "AVX2":
        return 2.0, "Intel AVX2 core (Haswell and later): two FMA units"
    if "apple" in low or (machine == "arm64" and sys.platform == "darwin"):
        return 4.0, "Apple M-series performance core: four 128-bit FMA pipes"
    if isa == "NEON":
        return 2.0, "Arm core, assumed two 128-bit FMA pipes (Neoverse N1/N2 class)"
    return None, "unknown for this core"


@functools.lru_cache(maxsize=8)
def theoretical_peak(threads: int) -> dict[str, Any]:
    """This CPU's theoretical float32 peak at ``threads`` threads, and where each factor comes from:
    fp32 lanes of its widest FMA (``/proc/cpuinfo`` flags) x FMA instructions per cycle and core (a table by vendor
    and family: the OS does not report it) x 2 (a multiply-add is two operations) x cores used (``min(threads,
    physical cores)``) x clock (cpufreq's maximum, else the model name's nominal ``@ x GHz``, else ``/proc/cpuinfo``'s
    current ``cpu MHz``, which in a virtual machine is the host's nominal clock, not its boost).

    Returns:
        ``{"gflops", "lanes", "isa", "fma_per_cycle", "cores", "clock_ghz", "sources": {factor: why}, "unknown":
        [factors]}``; ``gflops`` is ``None`` when a factor is unknown.
    """
    info = cpu_info()
    sources: dict[str, str] = {}
    text = ""
    if sys.platform.startswith("linux") and os.path.exists("/proc/cpuinfo"):
        try:
            text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
        except OSError:
            text = ""
    flags = set((_cpuinfo_field(text, "flags") or _cpuinfo_field(text, "Features") or "").split())
    machine = platform.machine()
    if machine in ("arm64", "aarch64") and not flags:
        flags = {"asimd"}
    lanes, isa = None, None
    for flag, n, name in _LANES:
        if flag in flags:
            lanes, isa = n, name
            break
    sources["lanes"] = f"{isa} ({lanes} fp32 lanes), from the CPU flags" if lanes else "no vector ISA recognised"
    vendor = _cpuinfo_field(text, "vendor_id") or ""
    fam = _cpuinfo_field(text, "cpu family")
    family = int(fam) if fam and fam.isdigit() else None
    fma, why = _fma_units(vendor, family, isa or "", str(info.get("cpu") or ""), machine)
    sources["fma_per_cycle"] = why
    cores_physical = info.get("cores_physical") or info.get("cores_logical") or 1
    cores = max(1, min(int(threads), int(cores_physical)))
    sources["cores"] = f"min(threads {threads}, physical cores {cores_physical})"
    clock, clock_src = None, "unknown"
    try:
        khz = open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", encoding="utf-8").read().strip()
        clock, clock_src = int(khz) / 1e6, "cpufreq maximum (boost)"
    except (OSError, ValueError):
        m = re.search(r"@\s*([\d.]+)\s*GHz", str(info.get("cpu") or ""))
        mhz = _cpuinfo_field(text, "cpu MHz")
        if m:
            clock, clock_src = float(m.group(1)), "nominal clock in the model name (boost may be higher)"
        elif mhz:
            clock, clock_src = float(mhz) / 1000, ("/proc/cpuinfo cpu MHz (the current or, in a virtual machine, the "
                                                   "host's nominal clock: boost may be higher)")
        elif sys.platform == "darwin":
            hz = _run(["sysctl", "-n", "hw.cpufrequency_max"])
            if hz and hz.isdigit():
                clock, clock_src = int(hz) / 1e9, "sysctl hw.cpufrequency_max"
    sources["clock_ghz"] = clock_src
    unknown = [k for k, v in (("lanes", lanes), ("fma_per_cycle", fma), ("clock_ghz", clock)) if v is None]
    gflops = None if unknown else float(lanes) * float(fma) * 2.0 * cores * float(clock)
    return {"gflops": gflops, "lanes": lanes, "isa": isa, "fma_per_cycle": fma, "cores": cores, "clock_ghz": clock,
            "sources": sources, "unknown": unknown}
