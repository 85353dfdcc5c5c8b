"""ExecuTorch (XNNPACK): the missing-extra error, options and calibration inputs, the thread-pool order (with a spy),
and, when the extra is installed, real fp32 and int8 exports, their manifests and parity, and latency end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from mobileone_bench.errors import ExportError, MeasurementError, MissingDependencyError, UsageError
from mobileone_bench.formats import FORMATS, check_format_available, get_format
from mobileone_bench.formats._base import ExportOptions, artifact_dir

EXTRA = "mobileone-bench[executorch]"


def _one_error_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


# ------------------------------------------------------------------------------------ without the extra


@pytest.fixture
def no_executorch(monkeypatch):
    """Make ``executorch`` (and torchao) look uninstalled, whether or not this machine has the extra."""
    for name in ("executorch", "torchao"):
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_extra_is_one_line_naming_it(no_executorch, runner, cli, tmp_path):
    with pytest.raises(MissingDependencyError, match=r"mobileone-bench\[executorch\]"):
        check_format_available(FORMATS["executorch"])
    from mobileone_bench.devices import check_runtime_available, get_runtime

    with pytest.raises(MissingDependencyError, match=r"the executorch runtime .*mobileone-bench\[executorch\]"):
        check_runtime_available(get_runtime("cpu", "executorch"))
    # the CLI: one line, before any work (nothing exported, nothing stored)
    line = _one_error_line(runner.invoke(cli, ["export", "mobileone_tiny", "--format", "executorch",
                                               "--out", str(tmp_path / "m")]))
    assert EXTRA in line and "executorch" in line
    line = _one_error_line(runner.invoke(cli, ["latency", "mobileone_tiny", "--runtime", "executorch",
                                               "--results", str(tmp_path / "r"), "--models-dir",
                                               str(tmp_path / "m")]))
    assert EXTRA in line
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())
    assert not (tmp_path / "r").exists()


def test_format_and_runtime_entries():
    spec = get_format("pte")
    assert spec is FORMATS["executorch"] and spec.suffix == ".pte" and spec.devices == ("cpu",)
    assert spec.precisions == ("fp32", "int8") and spec.default_precision == "fp32" and not spec.needs_gpu
    from mobileone_bench.devices import cpu_runtime_options, get_runtime

    rt = get_runtime("cpu", "executorch")
    assert rt.artifact == "executorch" and rt.precisions == ("fp32", "int8") and rt.default_report == "median"
    assert (rt.default_warmup, rt.default_runs) == (10, 100)  # the same protocol as onnxruntime
    # onnxruntime's options do not describe ExecuTorch (and must not enter its record key)
    assert dict(cpu_runtime_options("executorch")) == {"delegate": "xnnpack"}


def test_precision_and_calibration_options(tmp_path):
    with pytest.raises(UsageError, match="onnx artifacts cannot be int8.*--format executorch --precision int8"):
        ExportOptions(precision="int8").precision_for(FORMATS["onnx"])
    assert ExportOptions(precision="int8").precision_for(FORMATS["executorch"]) == "int8"
    with pytest.raises(UsageError, match="executorch artifacts cannot be fp16"):
        ExportOptions(precision="fp16").precision_for(FORMATS["executorch"])
    with pytest.raises(UsageError, match="does not exist"):
        ExportOptions(precision="int8", calibration_images=str(tmp_path / "nope")).validate()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        ExportOptions(precision="int8", calibration_images=str(tmp_path / "notes.txt")).validate()
    with pytest.raises(UsageError, match="holds no .jpg, .jpeg or .png"):
        ExportOptions(precision="int8", calibration_images=str(tmp_path)).validate()
    with pytest.raises(UsageError, match="applies to int8 only"):
        ExportOptions(precision="fp32", calibration_images=str(tmp_path)).validate()
    with pytest.raises(UsageError, match="at least 1"):
        ExportOptions(precision="int8", calibration_samples=0).validate()


def _images(folder: Path, colours: list[tuple[int, int, int]], size=(80, 60)) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, colour in enumerate(colours):
        p = folder / f"img{i}.{'png' if i % 2 else 'JPG'}"
        Image.new("RGB", size, colour).save(p, format="PNG" if i % 2 else "JPEG", quality=100)
        paths.append(p)
    return paths


def test_cache_key_and_folder_follow_the_calibration(tmp_path):
    fmt = FORMATS["executorch"]
    imgs = _images(tmp_path / "imgs", [(10, 20, 30), (200, 100, 50)])
    random8 = ExportOptions(precision="int8", calibration_samples=8)
    images = ExportOptions(precision="int8", calibration_images=str(tmp_path / "imgs"))
    assert random8.for_format(fmt).settings()["calibration"] == {"source": "random", "samples": 8}
    key = images.for_format(fmt).settings()["calibration"]
    assert key["source"] == "images" and key["samples"] == 2 and len(key["images_sha256"]) == 64
    from PIL import Image

    Image.new("RGB", (80, 60), (0, 0, 0)).save(imgs[1], format="PNG")  # same name, new content: a new artifact
    assert images.for_format(fmt).settings()["calibration"]["images_sha256"] != key["images_sha256"]
    assert "calibration" not in ExportOptions(precision="fp32").for_format(fmt).settings()  # fp32 does not calibrate
    shape = (1, 3, 64, 64)
    assert artifact_dir(tmp_path, "m", fmt, "int8", shape, random8, True).name == "executorch-int8-64x64"
    assert artifact_dir(tmp_path, "m", fmt, "int8", shape, images, True).name == "executorch-int8-64x64-imagecalib"


def test_calibration_inputs_random_and_from_images(tmp_path):
    import torch

    from mobileone_bench.formats.executorch import IMAGENET_MEAN, calibration_inputs

    fmt = FORMATS["executorch"]
    xs, meta = calibration_inputs(ExportOptions(precision="int8", calibration_samples=3).for_format(fmt),
                                  (1, 3, 32, 48))
    assert len(xs) == 3 and all(x.shape == (1, 3, 32, 48) for x in xs) and meta["source"] == "random"
    assert not torch.equal(xs[0], xs[1])  # distinct inputs
    mean_rgb = tuple(round(255 * m) for m in IMAGENET_MEAN)
    _images(tmp_path / "imgs", [mean_rgb, (255, 255, 255), (0, 0, 0)], size=(90, 50))
    (tmp_path / "imgs" / "readme.txt").write_text("not an image")
    options = ExportOptions(precision="int8", calibration_images=str(tmp_path / "imgs"), calibration_samples=2)
    xs, meta = calibration_inputs(options.for_format(fmt), (1, 3, 32, 48))
    assert meta["source"] == "images" and meta["samples"] == 2 and meta["files"] == ["img0.JPG", "img1.png"]
    assert "ImageNet normalisation" in meta["preprocessing"] and "center crop 32x48" in meta["preprocessing"]
    assert [tuple(x.shape) for x in xs] == [(1, 3, 32, 48)] * 2
    assert xs[0].abs().max() < 0.05  # the ImageNet mean colour normalises to ~0
    white = torch.tensor([(1 - m) / s for m, s in zip(IMAGENET_MEAN, (0.229, 0.224, 0.225))])
    assert torch.allclose(xs[1][0, :, 5, 5], white, atol=0.02)
    (tmp_path / "imgs" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ExportError, match="broken.png cannot be read"):
        calibration_inputs(ExportOptions(precision="int8", calibration_images=str(tmp_path / "imgs")).for_format(fmt),
                           (1, 3, 32, 48))


def test_cli_bad_calibration_inputs_are_one_line(runner, cli, tmp_path):
    base = ["export", "mobileone_tiny", "--format", "executorch", "--out", str(tmp_path / "m")]
    line = _one_error_line(runner.invoke(cli, [*base, "--precision", "int8", "--calibration-images",
                                               str(tmp_path / "missing")]))
    assert "calibration folder" in line and "does not exist" in line
    line = _one_error_line(runner.invoke(cli, [*base, "--calibration-images", str(tmp_path)]))
    assert "applies to int8 only" in line
    line = _one_error_line(runner.invoke(cli, ["export", "mobileone_tiny", "--format", "onnx", "--precision", "int8",
                                               "--out", str(tmp_path / "m")]))
    assert "onnx artifacts cannot be int8" in line
    line = _one_error_line(runner.invoke(cli, ["latency", "mobileone_tiny", "--precision", "int8",
                                               "--results", str(tmp_path / "r")]))
    assert "onnxruntime on cpu cannot run int8" in line


def test_int8_parity_judges_the_export_not_the_quantization():
    """Against fp32 the errors are recorded whatever they are; a .pte far below PyTorch's quantized graph fails."""
    import torch

    from mobileone_bench.formats.executorch import int8_parity

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 20)).eval()

    def noisy(scale, seed):
        g = torch.Generator().manual_seed(seed)
        return lambda x: model(x) + scale * torch.randn(model(x).shape, generator=g)

    quantized = noisy(0.05, 1)  # PyTorch's int8 graph: some quantization noise
    method = lambda noise: types.SimpleNamespace(execute=lambda inputs: [noise(inputs[0])])  # noqa: E731
    good = int8_parity(method(noisy(0.05, 2)), model, quantized, (1, 3, 4, 4))
    assert good["passed"] and good["inputs"] == 4 and 0 < good["max_abs_err"] < 0.5
    assert abs(good["sqnr_db"] - good["reference_sqnr_db"]) < 3
    lossy = int8_parity(method(noisy(2.0, 2)), model, quantized, (1, 3, 4, 4))  # far noisier than the reference
    assert not lossy["passed"] and lossy["sqnr_db"] < lossy["reference_sqnr_db"] - 3
    assert lossy["top1_agreement"] < 1 and "below the quantized reference" in lossy["summary"]
    dead = int8_parity(method(lambda x: torch.full((1, 20), float("nan"))), model, quantized, (1, 3, 4, 4))
    assert not dead["passed"] and dead["finite"] is False


# ------------------------------------------------------------------------------ the thread pool, with a spy


class SpyExecuTorch:
    """Stands in for ExecuTorch's pool and loader: one process-wide pool, and a log of every call in order."""

    def __init__(self, threads: int = 4, fail_load: bool = False):
        self.pool = threads
        self.calls: list[str] = []
        self.fail_load = fail_load
        self.version = "spy"

    def thread_count(self):
        return self.pool

    def reset_threadpool(self, n: int):
        self.calls.append(f"reset({n})")
        self.pool = n

    def load(self, path: Path):
        self.calls.append(f"load_program({Path(path).name})")
        if self.fail_load:
            raise RuntimeError("bad magic")
        method = types.SimpleNamespace(execute=lambda inputs: [inputs[0] * 2])
        self.calls.append("load_method(forward)")
        return object(), method


@pytest.fixture
def fresh_pool(monkeypatch):
    from mobileone_bench.devices import executorch as runtime

    pool = runtime._SharedPool()
    monkeypatch.setattr(runtime, "_POOL", pool)
    return pool


def test_threads_are_set_before_the_method_is_loaded(fresh_pool, tmp_path):
    from mobileone_bench.devices.executorch import ExecuTorchRunner

    spy = SpyExecuTorch(threads=4)
    runner = ExecuTorchRunner(tmp_path / "a.pte", (1, 3, 8, 8), 1, backend=spy)
    assert spy.calls == ["reset(1)", "load_program(a.pte)", "load_method(forward)"]
    settings = runner.settings()
    assert settings["threads"] == 1 and settings["threadpool_threads"] == 1
    assert settings["threads_set"] == "before load_method" and "4 -> 1" in settings["threadpool_reset"]
    assert "spin" in settings["spin_policy"]
    assert runner()[0].shape == (1, 3, 8, 8)
    # a second model at the same count shares the pool: no reset while the first is loaded
    same = ExecuTorchRunner(tmp_path / "b.pte", (1, 3, 8, 8), 1, backend=spy)
    assert spy.calls[3:] == ["load_program(b.pte)", "load_method(forward)"]
    assert "kept at 1" in same.settings()["threadpool_reset"] and fresh_pool.live == 2
    # another count while methods are loaded would crash them: refused, with nothing reset or loaded
    with pytest.raises(MeasurementError, match="shared by the whole process.*2 loaded model.*--threads 2"):
        ExecuTorchRunner(tmp_path / "c.pte", (1, 3, 8, 8), 2, backend=spy)
    assert len(spy.calls) == 5 and spy.pool == 1 and fresh_pool.live == 2
    runner.close()
    runner.close()  # closing twice releases once
    assert fresh_pool.live == 1
    same.close()
    # every method released: the next runner may resize the pool, again before loading
    other = ExecuTorchRunner(tmp_path / "c.pte", (1, 3, 8, 8), 2, backend=spy)
    assert spy.calls[5:] == ["reset(2)", "load_program(c.pte)", "load_method(forward)"]
    assert other.settings()["threadpool_threads"] == 2
    other.close()
    assert fresh_pool.live == 0


def test_a_failed_load_releases_the_pool(fresh_pool, tmp_path):
    from mobileone_bench.devices.executorch import ExecuTorchRunner

    spy = SpyExecuTorch(threads=2, fail_load=True)
    with pytest.raises(MeasurementError, match="executorch cannot load .*bad.pte: bad magic"):
        ExecuTorchRunner(tmp_path / "bad.pte", (1, 3, 8, 8), 2, backend=spy)
    assert spy.calls == ["load_program(bad.pte)"] and fresh_pool.live == 0  # 2 threads already: no reset


def test_make_runner_checks_precision_and_artifact():
    from mobileone_bench.devices.executorch import make_runner
    from mobileone_bench.devices.onnxruntime import make_runner as ort_runner

    with pytest.raises(UsageError, match="executorch on the CPU runs fp32 or int8"):
        make_runner("executorch", artifact=Path("x.pte"), model=None, input_shape=(1, 3, 8, 8), precision="fp16",
                    threads=1, options={})
    with pytest.raises(MeasurementError, match="needs the .pte artifact"):
        make_runner("executorch", artifact=None, model=None, input_shape=(1, 3, 8, 8), precision="int8",
                    threads=1, options={})
    with pytest.raises(UsageError, match="the CPU runtimes measure fp32"):
        ort_runner("onnxruntime", artifact=Path("x.onnx"), model=None, input_shape=(1, 3, 8, 8), precision="int8",
                   threads=1, options={})


# ----------------------------------------------------------------------------------- with the real extra


@pytest.fixture(scope="module")
def et():
    return pytest.importorskip("executorch.runtime", reason=f"the executorch extra is not installed ({EXTRA})")


@pytest.fixture(scope="module")
def tiny(et):
    from mobileone_bench import pipeline

    return pipeline.prepare("mobileone_tiny")  # 64x64 by default


@pytest.fixture(scope="module")
def fp32_export(et, tiny, tmp_path_factory):
    from mobileone_bench.formats._base import export_one

    out = tmp_path_factory.mktemp("et-models")
    return out, export_one(tiny, FORMATS["executorch"], out, ExportOptions())


@pytest.fixture(scope="module")
def int8_export(et, tiny, fp32_export):
    from mobileone_bench.formats._base import export_one

    out, _ = fp32_export
    # the default calibration (16 random inputs), so that `latency --precision int8` below reuses this artifact
    return export_one(tiny, FORMATS["executorch"], out, ExportOptions(precision="int8"))


@pytest.mark.slow
def test_fp32_export_manifest_parity_and_cache(fp32_export, tiny):
    from mobileone_bench.formats._base import CACHED, EXPORTED, export_one, read_manifest, tree_sha256

    out, result = fp32_export
    assert result.status == EXPORTED, result.error
    folder = out / "mobileone_tiny" / "executorch-fp32-64x64"
    manifest = read_manifest(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.pte"]
    assert manifest["format"] == "executorch" and manifest["precision"] == "fp32" and manifest["artifact"] == "model.pte"
    assert manifest["sha256"] == tree_sha256(folder / "model.pte") and manifest["input_shape"] == [1, 3, 64, 64]
    assert manifest["versions"]["executorch"] and manifest["versions"]["torch"] and "torchao" in manifest["versions"]
    parity = manifest["parity"]
    assert parity["passed"] and parity["max_rel_err"] < 1e-3 and parity["top5_overlap"] == 5
    delegation = manifest["format_meta"]["delegation"]
    assert delegation["backend"] == "XnnpackBackend" and delegation["delegate_calls"] >= 1
    assert delegation["delegated_nodes"] == sum(delegation["delegated_ops"].values()) > 0
    assert delegation["non_delegated_nodes"] == sum(delegation["non_delegated_ops"].values())
    assert any("convolution" in op for op in delegation["delegated_ops"])
    again = export_one(tiny, FORMATS["executorch"], out, ExportOptions())
    assert again.status == CACHED and again.manifest["created"] == manifest["created"]


@pytest.mark.slow
def test_int8_export_records_what_int8_costs(int8_export, fp32_export):
    from mobileone_bench.formats._base import EXPORTED
    from mobileone_bench.formats.executorch import INT8_SCHEME

    assert int8_export.status == EXPORTED, int8_export.error
    manifest = int8_export.manifest
    assert manifest["precision"] == "int8" and int8_export.path.endswith("executorch-int8-64x64/model.pte")
    meta = manifest["format_meta"]
    assert meta["quantization"] == INT8_SCHEME
    assert meta["calibration"]["source"] == "random" and meta["calibration"]["samples"] == 16
    assert manifest["settings"]["calibration"] == {"source": "random", "samples": 16}
    parity = manifest["parity"]
    for key in ("top1_agreement", "top5_overlap_mean", "top5_overlap_min", "max_abs_err", "mean_abs_err",
                "sqnr_db", "reference_sqnr_db", "vs_quantized_reference_max_abs_err"):
        assert parity[key] is not None, key
    assert parity["passed"] and parity["inputs"] == 4 and parity["finite"]
    assert 0 <= parity["top1_agreement"] <= 1 and 0 <= parity["top5_overlap_min"] <= 5
    assert parity["max_abs_err"] > 0  # int8 is not fp32: an error of exactly zero would mean nothing was quantized
    # quantized ops went to XNNPACK
    delegated = meta["delegation"]["delegated_ops"]
    assert any("quantize" in op for op in delegated), delegated
    # int8 weights: a clearly smaller program than fp32's
    assert manifest["size_bytes"] < 0.6 * fp32_export[1].manifest["size_bytes"]


@pytest.mark.slow
def test_int8_calibration_on_images(et, tiny, tmp_path, monkeypatch):
    """The images reach the quantizer's calibration and the manifest. (The quantization itself is the test above's:
    here it is replaced by the fp32 model, which keeps this test to seconds.)"""
    import torch

    from mobileone_bench.formats import executorch as et_format
    from mobileone_bench.formats._base import EXPORTED, export_one

    _images(tmp_path / "imgs", [(120, 110, 100), (30, 60, 90), (250, 5, 5)])
    options = ExportOptions(precision="int8", calibration_images=str(tmp_path / "imgs"), calibration_samples=2)
    seen = []

    def no_quantization(model, x, calibration):
        seen.extend(calibration)
        return model

    monkeypatch.setattr(et_format, "_quantize", no_quantization)
    result = export_one(tiny, FORMATS["executorch"], tmp_path / "m", options)
    assert result.status == EXPORTED, result.error
    expected, _ = et_format.calibration_inputs(options.for_format(FORMATS["executorch"]), tiny.input_shape)
    assert len(seen) == 2 and all(torch.equal(a, b) for a, b in zip(seen, expected))
    assert result.manifest["settings"]["calibration"]["source"] == "images"
    calib = result.manifest["format_meta"]["calibration"]
    assert calib["source"] == "images" and calib["files"] == ["img0.JPG", "img1.png"]
    assert calib["folder"] == str((tmp_path / "imgs").resolve()) and "ImageNet" in calib["preprocessing"]
    assert "-imagecalib" in result.path


@pytest.mark.slow
def test_latency_end_to_end_and_run(et, fp32_export, int8_export, runner, cli, tmp_path, quiet_machine):
    out, _ = fp32_export
    results = tmp_path / "results"
    args = ["latency", "mobileone_tiny", "--runtime", "executorch", "--threads", "1", "--warmup", "1", "--runs",
            "5", "--results", str(results), "--models-dir", str(out), "--format", "json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout)[0]
    assert rec["status"] == "ok" and rec["runtime"] == "executorch" and rec["precision"] == "fp32"
    assert rec["n"] == 5 and rec["threads"] == 1 and rec["artifact_format"] == "executorch"
    assert rec["latency_ms"] == rec["median_ms"] > 0
    # 5 runs: no pair of order statistics covers the median with 95% (the best, min-max, 93.75%): no interval
    assert rec["ci_low_ms"] is None and rec["ci_method"] == "order statistics (exact binomial)"
    settings = json.loads(rec["runtime_settings"])
    assert settings["threads"] == 1 and settings["threadpool_threads"] == 1
    assert settings["threads_set"] == "before load_method" and settings["delegate"] == "XNNPACK"
    assert json.loads(rec["versions"])["executorch"] == settings["executorch"]
    # int8, through the same path (the int8 artifact of the fixture above is reused from the cache)
    result = runner.invoke(cli, [*args[:-2], "--precision", "int8", "--format", "json"])
    assert result.exit_code == 0, result.output
    rec8 = json.loads(result.stdout)[0]
    assert rec8["status"] == "ok" and rec8["precision"] == "int8" and rec8["key"] != rec["key"]
    assert rec8["artifact_sha256"] == int8_export.manifest["sha256"]  # the cached int8 artifact, not a new one
    # run: profile + the stored fp32 latency, and the Table 9 layout with ExecuTorch in the CPU column
    result = runner.invoke(cli, ["run", "mobileone_tiny", "--runtime", "executorch", "--threads", "1", "--warmup",
                                 "1", "--runs", "5", "--results", str(results), "--models-dir", str(out),
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["models"][0]
    assert summary["status"].startswith("ok") and summary["latency_ms"] == rec["latency_ms"]
    from mobileone_bench.analysis.tables import build_table
    from mobileone_bench.store.records import ResultsStore

    table = build_table(ResultsStore(results), "table9", models=["mobileone_tiny"], runtimes=["executorch"],
                        precision="fp32")
    header = next(c["header"] for c in table["columns"] if c["key"] == "cpu_ms")
    assert "executorch" in header
    assert table["groups"][0]["rows"][0]["cpu_ms"] == pytest.approx(rec["latency_ms"])


@pytest.mark.slow
def test_real_pool_can_be_resized_after_every_runner_closed(et, fp32_export):
    """The rule of ``_SharedPool`` on the real runtime, in a child process (a crash must fail this test, not end
    the test session): 1 thread, close, 2 threads, then a refused third count while the second is loaded."""
    _, result = fp32_export
    code = textwrap.dedent(f"""
        from mobileone_bench.devices.executorch import ExecuTorchRunner
        from mobileone_bench.errors import MeasurementError
        a = ExecuTorchRunner({result.path!r}, (1, 3, 64, 64), 1)
        a(); s1 = a.settings(); a.close()
        b = ExecuTorchRunner({result.path!r}, (1, 3, 64, 64), 2)
        b(); s2 = b.settings()
        try:
            ExecuTorchRunner({result.path!r}, (1, 3, 64, 64), 1)
            refused = False
        except MeasurementError:
            refused = True
        b(); b.close()
        print(s1["threadpool_threads"], s2["threadpool_threads"], refused)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-3:] == ["1", "2", "True"]
