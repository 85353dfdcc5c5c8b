#!/usr/bin/env python3
"""Write the part of TensorRT's Python API that mobileone-bench uses, as one JSON list per TensorRT version.

The tests build a strict fake ``tensorrt`` module from each list (an attribute the list lacks raises
``AttributeError``, a call whose arguments match none of the recorded signatures raises ``TypeError``), so the
exporter and the runtime are tested against what each real release offers, on machines without a GPU.

Two sources:

* a bindings wheel (``pip download --no-deps tensorrt-cu13-bindings==11.4.0.106``, ``tensorrt-cu12-bindings``,
  ``tensorrt-bindings==8.6.1``): its compiled module is imported for real, in a child process, with stand-in
  ``libnvinfer*.so`` libraries compiled here (every symbol the module needs from them returns 0; importing never calls
  them), so every class, method signature, property and enum member comes from the module itself. Needs ``gcc`` and
  ``nm`` (binutils), Linux x86-64 and the wheel's Python version;
* ``--installed``: the ``tensorrt`` module installed here (a GPU machine with the ``tensorrt`` extra).

What is written: the module's names and kinds; every member of each class the product reaches (the classes it names
as ``trt.X``, those its methods return, and :data:`EXTRA_CLASSES`); and, from the product's source
(:data:`PRODUCT_MODULES`), every ``trt.A.B`` chain it spells and every attribute name it uses, each with whether this
version has it, so a removal (TensorRT 11's ``BuilderFlag.FP16``) shows in the list.

Usage::

    python tools/tensorrt_api_surface.py WHEEL [WHEEL ...] --out tests/fixtures/tensorrt
    python tools/tensorrt_api_surface.py --installed --out tests/fixtures/tensorrt
"""

from __future__ import annotations

import argparse
import ast
import email.parser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The modules whose use of ``tensorrt`` the lists cover (``trt`` is the name they import it as).
PRODUCT_MODULES = ("mobileone_bench/formats/tensorrt.py", "mobileone_bench/devices/_tensorrt.py",
                   "mobileone_bench/devices/tensorrt.py")
#: Classes the product touches through properties (whose types pybind11 does not spell) or subclasses.
EXTRA_CLASSES = ("ICudaEngine", "IExecutionContext", "EngineInspector", "IProfiler", "IHostMemory", "ITimingCache",
                 "IOptimizationProfile", "IParserError", "ILogger", "Logger", "Runtime", "DataType", "TensorIOMode",
                 "LayerInformationFormat", "ProfilingVerbosity", "Dims")
SCHEMA = 1


# ----------------------------------------------------------------------------------------- what the product uses

def product_uses(root: Path = ROOT) -> tuple[list[str], list[str]]:
    """``(chains, attributes)`` the product spells: ``trt.A.B`` chains and every attribute name used anywhere in
    :data:`PRODUCT_MODULES` (on TensorRT objects or not; the list says which classes have each)."""
    chains: set[str] = set()
    attrs: set[str] = set()
    for rel in PRODUCT_MODULES:
        tree = ast.parse((root / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                attrs.add(node.attr)
                parts, cur = [], node
                while isinstance(cur, ast.Attribute):
                    parts.append(cur.attr)
                    cur = cur.value
                if isinstance(cur, ast.Name) and cur.id == "trt":
                    chains.add(".".join(["trt", *reversed(parts)]))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                    and isinstance(node.args[1].value, str):
                attrs.add(node.args[1].value)  # getattr(x, "name"...): a use too
                base = node.args[0]
                if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id == "trt":
                    chains.add(f"trt.{base.attr}.{node.args[1].value}")
    chains = {c for c in chains if not any(o != c and o.startswith(c + ".") for o in chains)}  # the longest only
    return sorted(chains), sorted(a for a in attrs if not a.startswith("__"))


# ------------------------------------------------------------------------------------------- reading the module

_SIG = re.compile(r"^(?:\d+\. )?(\w+)\((.*)\)(?: -> (.+))?$")


def _clean(text: str) -> str:
    return re.sub(r"\btensorrt(?:_bindings)?\.tensorrt\.", "", text)


def _signatures(obj: Any) -> list[str]:
    doc = _clean(getattr(obj, "__doc__", None) or "")
    return [line.strip() for line in doc.splitlines() if _SIG.match(line.strip())
            and not line.strip().startswith("Overloaded")]


def _kind(value: Any) -> str:
    if isinstance(value, property):
        return "property"
    if isinstance(value, type):
        return "enum" if hasattr(value, "__members__") else "class"
    if callable(value):
        return "method"
    return "value"


def _value_info(value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "value", "type": type(value).__name__}
    if hasattr(type(value), "__members__"):
        out.update(member=getattr(value, "name", str(value)), int=int(value))
    elif isinstance(value, (int, float, str, bool)):
        out["value"] = value
    return out


def _class_info(cls: type) -> dict[str, Any]:
    info: dict[str, Any] = {"kind": "enum" if hasattr(cls, "__members__") else "class",
                            "bases": [b.__name__ for b in cls.__mro__[1:] if not b.__module__.startswith(("builtins",
                                                                                                          "pybind11"))],
                            "init": _signatures(getattr(cls, "__init__", None)), "members": {}}
    if info["kind"] == "enum":
        info["enum"] = {name: int(v) for name, v in cls.__members__.items()}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith(("builtins", "pybind11")):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or (info["kind"] == "enum" and name in info["enum"]):
                continue
            if isinstance(value, type):
                info["members"][name] = {"kind": "nested", "class": value.__name__}
            elif isinstance(value, property) or _kind(value) == "method":
                entry: dict[str, Any] = {"kind": _kind(value)}
                sigs = _signatures(value.fget if isinstance(value, property) else value)
                if sigs:
                    entry["signatures"] = sigs
                if isinstance(value, property):
                    entry["writable"] = value.fset is not None
                info["members"][name] = entry
            else:
                info["members"][name] = _value_info(value)
    return info


def _returns(info: dict[str, Any]) -> set[str]:
    out = set()
    for entry in info["members"].values():
        for sig in entry.get("signatures", ()):
            m = _SIG.match(sig)
            if m and m.group(3):
                out.update(re.findall(r"\b([A-Z]\w+)\b", m.group(3)))
    return out


def describe(trt: Any, chains: list[str], attrs: list[str]) -> dict[str, Any]:
    """The surface of an imported ``tensorrt`` module that the product can reach, and the product's uses."""
    names = {n: _kind(getattr(trt, n)) for n in dir(trt) if not n.startswith("_")}
    module: dict[str, Any] = {"__version__": trt.__version__, "names": {}}
    for n, kind in sorted(names.items()):
        value = getattr(trt, n)
        module["names"][n] = (_value_info(value) if kind == "value" else
                              {"kind": kind, **({"signatures": _signatures(value)} if kind == "method" else {})})
    wanted = {c.split(".")[1] for c in chains} | set(EXTRA_CLASSES)
    classes: dict[str, Any] = {}
    todo = [n for n in sorted(wanted) if isinstance(getattr(trt, n, None), type)]
    while todo:
        name = todo.pop()
        if name in classes or not isinstance(getattr(trt, name, None), type):
            continue
        classes[name] = info = _class_info(getattr(trt, name))
        used = {k: v for k, v in info["members"].items() if k in attrs}
        todo.extend(_returns({"members": used}) - set(classes))
        todo.extend(v["class"] for v in info["members"].values() if v.get("kind") == "nested")
        todo.extend(v["type"] for v in info["members"].values() if v.get("kind") == "value" and "member" in v
                    and isinstance(getattr(trt, v["type"], None), type))
    for value in module["names"].values():  # trt.float16 and friends: their enum too
        if value.get("kind") == "value" and "member" in value and value["type"] not in classes \
                and isinstance(getattr(trt, value["type"], None), type):
            classes[value["type"]] = _class_info(getattr(trt, value["type"]))

    def has(chain: str) -> bool:
        obj: Any = trt
        for part in chain.split(".")[1:]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True

    return {
        "schema": SCHEMA,
        "module": module,
        "classes": dict(sorted(classes.items())),
        "uses": {c: has(c) for c in chains},
        "attributes": {a: sorted(c for c, i in classes.items() if a in i["members"] or a in i.get("enum", {}))
                       for a in attrs},
    }


# -------------------------------------------------------------------------------------------- wheels and output

def _wheel_facts(wheel: Path) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(z.read(meta_name).decode("utf-8", "replace"))
    return {"file": wheel.name, "name": meta["Name"], "version": meta["Version"],
            "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}


def _stub_libraries(module_so: Path, stubs: Path) -> None:
    """Compile stand-ins for the TensorRT libraries the compiled module links to (every symbol returns 0)."""
    for tool in ("gcc", "nm", "readelf"):
        if shutil.which(tool) is None:
            raise SystemExit(f"reading a wheel needs {tool} (gcc and binutils); or run with --installed on a GPU "
                             "machine")
    needed = re.findall(r"\[(lib\S+\.so\.\d+)\]", subprocess.run(["readelf", "-d", str(module_so)],
                                                                  capture_output=True, text=True,
                                                                  check=True).stdout)
    undefined = subprocess.run(["nm", "-D", "--undefined-only", str(module_so)], capture_output=True, text=True,
                               check=True).stdout.split()
    symbols = sorted({s for s in undefined if re.match(r"^[A-Za-z_]\w*$", s) and s not in ("U", "w", "v")
                      and not s.startswith(("Py", "_Py", "_ITM", "__gmon", "_ZGTt", "pthread", "__pthread", "dl"))
                      and "@" not in s})
    src = stubs / "stub.c"
    src.write_text("".join(f"void *{s}(void) {{ return 0; }}\n" for s in symbols), encoding="utf-8")
    for lib in needed:
        if lib.startswith("libnv"):
            subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(stubs / lib), str(src), f"-Wl,-soname,{lib}"],
                           check=True)


def read_wheel(wheel: Path) -> dict[str, Any]:
    """The surface of a bindings wheel's module (imported in a child process with stand-in libraries)."""
    facts = _wheel_facts(wheel)
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmpdir / "site")
        package = next(p.parent for p in (tmpdir / "site").glob("*/tensorrt*.so"))
        (tmpdir / "stubs").mkdir()
        _stub_libraries(next(package.glob("tensorrt*.so")), tmpdir / "stubs")
        env = {**os.environ, "LD_LIBRARY_PATH": str(tmpdir / "stubs"),
               "PYTHONPATH": os.pathsep.join([str(tmpdir / "site"), str(ROOT)])}
        child = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--dump-module", package.name],
                               capture_output=True, text=True, env=env)
        if child.returncode != 0:
            raise SystemExit(f"importing {wheel.name} failed:\n{child.stderr[-2000:]}")
        surface = json.loads(child.stdout)
    return {"source": {"wheel": facts}, **surface}


def read_installed() -> dict[str, Any]:
    import tensorrt as trt
    from importlib import metadata

    dists = {}
    for name in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11", "tensorrt-cu13-bindings",
                 "tensorrt-cu12-bindings", "tensorrt-bindings"):
        try:
            dists[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"source": {"installed": dists}, **describe(trt, *product_uses())}


def out_name(surface: dict[str, Any]) -> str:
    version = surface["module"]["__version__"]
    major, minor = version.split(".")[:2]
    return f"tensorrt-{major}.{minor}.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("wheels", nargs="*", type=Path, help="TensorRT bindings wheels")
    p.add_argument("--installed", action="store_true", help="read the tensorrt module installed here")
    p.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "tensorrt")
    p.add_argument("--dump-module", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.dump_module:  # the child process: import the wheel's package and print its surface
        import importlib

        trt = importlib.import_module(args.dump_module)
        json.dump(describe(trt, *product_uses()), sys.stdout)
        return 0
    surfaces = [read_wheel(w) for w in args.wheels] + ([read_installed()] if args.installed else [])
    if not surfaces:
        p.error("name at least one wheel, or --installed")
    args.out.mkdir(parents=True, exist_ok=True)
    for surface in surfaces:
        path = args.out / out_name(surface)
        path.write_text(json.dumps(surface, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        missing = [c for c, ok in surface["uses"].items() if not ok]
        print(f"{path}: TensorRT {surface['module']['__version__']}, {len(surface['classes'])} classes"
              + (f"; absent here: {', '.join(missing)}" if missing else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
