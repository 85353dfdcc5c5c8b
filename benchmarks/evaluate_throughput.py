"""Evaluation throughput (images/s) per runtime, so a user knows how long ``evaluate`` takes on 50,000 images.

A folder of generated JPEG images (``--images``, 500x375 like a typical ImageNet validation image, spread over ten
class folders) is written once; then every model of the zoo is evaluated on it by ``mb.evaluate`` with every
artifact this machine runs (PyTorch, ONNX on onnxruntime, ExecuTorch fp32 and int8; TensorRT on a GPU), artifacts
exported beforehand (an untimed first evaluation of 1 image, so export time is not counted). Reported per (model,
artifact, precision):

* ``predict_images_per_s``: the runtime's own rate (the record's ``images_per_s``: time inside the predictor only;
  PyTorch runs batches of 32, the artifacts one image at a time, as ``evaluate`` does);
* ``decode_images_per_s``: decoding and preprocessing (PIL + the model's transform), shared by every target of a
  model since each image is decoded once;
* ``minutes_for_50k``: 50,000 / the rate of decoding plus this one target (what ``evaluate --format <it>`` costs).

Accuracy on generated images means nothing: only the rates are reported. Run it alone on a quiet machine:

    python benchmarks/evaluate_throughput.py                                   # quick zoo, 500 images, 2 threads
    python benchmarks/evaluate_throughput.py --models mobileone_tiny --images 8 --threads 1   # smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scratch import scratch  # noqa: E402 - benchmarks/_scratch.py


def _write_images(root: Path, n: int, classes: int = 10, size: tuple[int, int] = (500, 375)) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / str(i % classes)
        folder.mkdir(parents=True, exist_ok=True)
        # smooth random colour fields compress like photographs more than white noise does
        small = rng.integers(0, 256, (size[1] // 25, size[0] // 25, 3), dtype=np.uint8)
        Image.fromarray(small).resize(size, Image.BILINEAR).save(folder / f"img{i:05d}.jpg", quality=90)
    return root


def _decode_rate(folder: Path, model: str, input_size: tuple[int, int] | None) -> float:
    """Images per second decoded and preprocessed as ``evaluate`` does (the model's own transform)."""
    from mobileone_bench import pipeline
    from mobileone_bench.evaluation.data import load_image, open_images
    from mobileone_bench.evaluation.preprocess import for_model

    prepared = pipeline.prepare(model, input_size=input_size, check=False)
    pre = for_model(prepared.train_model, prepared.input_shape)
    images = open_images(folder)
    start = time.perf_counter()
    for p in images.files:
        pre(load_image(p))
    return len(images.files) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default="quick")
    parser.add_argument("--models", nargs="*", default=None, help="Models instead of the zoo.")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--input-size", type=int, nargs=2, default=None, metavar=("H", "W"))
    parser.add_argument("--work", default=None, help="Folder for the images, artifacts and records (default: temp).")
    args = parser.parse_args(argv)

    import mobileone_bench as mb
    from mobileone_bench.models import registry

    names = args.models or registry.zoo_models(args.zoo)
    with scratch("evaluate-throughput-", args.work) as work:
        folder = _write_images(work / "images", args.images)
        size = tuple(args.input_size) if args.input_size else None
        rows: list[dict[str, Any]] = []
        for name in names:
            common = dict(data=folder, results=work / "results", models_dir=work / "models", threads=args.threads,
                          input_size=size, as_frame=False)
            try:
                mb.evaluate(name, limit=1, **common)  # exports every artifact (untimed)
                decode = _decode_rate(folder, name, size)
                records = mb.evaluate(name, force=True, **common)
            except Exception as exc:  # noqa: BLE001 - a model that fails is reported, the others go on
                rows.append({"model": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
                continue
            for r in records:
                rate = r.get("images_per_s")
                both = 1.0 / (1.0 / decode + 1.0 / rate) if rate else None
                rows.append({"model": name, "artifact": r.get("artifact"), "precision": r.get("precision"),
                             "runtime": r.get("runtime"), "status": r.get("status"), "images": r.get("n"),
                             "batch": r.get("batch"), "threads": args.threads,
                             "predict_images_per_s": rate, "decode_images_per_s": round(decode, 1),
                             "minutes_for_50k": round(50_000 / both / 60, 1) if both else None,
                             "error": r.get("error")})
        env = {"python": sys.version.split()[0], "images": args.images, "threads": args.threads, "work": args.work}
        print(json.dumps({"environment": env, "rows": rows}, indent=2))
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
