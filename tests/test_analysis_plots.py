"""Figures 1 and 2: non-empty PNG and SVG files with the expected number of points (counted on the matplotlib
artists and on the SVG markers), labels, titles and axes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.test_analysis_fixtures import build_store

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("plots") / "results")


def _svg_points(path: str, gid: str) -> int:
    root = ET.parse(path).getroot()
    group = next((g for g in root.iter(f"{SVG}g") if g.get("id") == gid), None)
    return 0 if group is None else sum(1 for _ in group.iter(f"{SVG}use"))


def _svg_text(path: str) -> str:
    return " ".join(t.text or "" for t in ET.parse(path).getroot().iter(f"{SVG}text"))


def test_panels_count_points_and_say_why_some_are_missing(store):
    from mobileone_bench.analysis.plots import figure_panels

    panels = {(p["figure"], p["device"], p["runtime"]): p
              for p in figure_panels(store, ["latency-vs-flops", "accuracy-vs-latency"])}
    assert set(panels) == {(f, d, r) for f in ("latency-vs-flops", "accuracy-vs-latency")
                           for d, r in [("cpu", "onnxruntime"), ("cpu", "torch"), ("iphone", "coreml"),
                                        ("gpu", "tensorrt")]}
    flops = panels[("latency-vs-flops", "cpu", "onnxruntime")]
    assert len(flops["points"]) == 14 and any("mixnet-s" in n for n in flops["notes"])  # no profile record
    acc = panels[("accuracy-vs-latency", "cpu", "onnxruntime")]
    assert len(acc["points"]) == 14 and any("timm:resnet18" in n for n in acc["notes"])  # no paper top-1
    s0 = next(p for p in acc["points"] if p["model"] == "mobileone_s0")
    assert (s0["x"], s0["y"], s0["label"], s0["group"]) == (pytest.approx(2.1), 71.4, "MobileOne-S0", "convolutional")
    assert flops["title"] == "Latency vs FLOPs: CPU onnxruntime, latency = median of 100 runs"
    assert "Fixture CPU @ 2.00GHz, 4 thread(s)" in flops["subtitle"]
    assert flops["xlabel"] == "FLOPs (M, log scale)" and flops["ylabel"] == "CPU latency (ms, log scale)"
    assert flops["reference_points"] == []


def test_png_and_svg_with_expected_points(store, tmp_path):
    from mobileone_bench.analysis.plots import OURS_GID, PAPER_GID, draw, figure_panels, make_plots

    written = make_plots(store, tmp_path / "fig", figures=["latency-vs-params"], devices=["iphone"],
                         reference="paper")
    (w,) = written
    assert (w["points"], w["reference_points"]) == (8, 30)
    png, svg = w["png"], w["svg"]
    assert png.endswith("latency-vs-params_iphone-coreml.png") and svg.endswith(".svg")
    with open(png, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[:2] == (975, 1350)
    assert _svg_points(svg, OURS_GID) == 8 and _svg_points(svg, PAPER_GID) == 30
    text = _svg_text(svg)
    for piece in ("Latency vs parameter count: iPhone coreml, latency = min of 1000 runs", "Parameters (M, log scale)",
                  "iPhone latency (ms, log scale)", "MobileOne-S0", "Mobileformer-96", "paper: transformer"):
        assert piece in text, piece
    # the same counts on the artists
    (panel,) = figure_panels(store, ["latency-vs-params"], devices=["iphone"], reference="paper")
    fig = draw(panel)
    ax = fig.axes[0]
    counts = {c.get_gid(): len(c.get_offsets()) for c in ax.collections}
    assert counts == {OURS_GID: 8, PAPER_GID: 30}
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.texts]
    # ours all labelled; the paper's labelled only where we have no point of that model (8 of 30 overlap)
    assert len(labels) == 8 + 22 and labels.count("MobileOne-S0") == 1
    assert sum(1 for line in ax.lines if line.get_gid() == "link") == 8


def test_reference_alone_and_accuracy_axes(tmp_path):
    from mobileone_bench.analysis.plots import PAPER_GID, make_plots
    from mobileone_bench.store.records import ResultsStore

    (w,) = make_plots(ResultsStore(tmp_path / "empty"), tmp_path / "fig", figures=["accuracy-vs-latency"],
                      reference="paper")
    assert (w["device"], w["runtime"], w["points"], w["reference_points"]) == ("iphone", "paper", 0, 30)
    assert _svg_points(w["svg"], PAPER_GID) == 30
    assert "ImageNet top-1 (%, paper)" in _svg_text(w["svg"])


def test_nothing_to_plot_is_an_error(tmp_path, store):
    from mobileone_bench.analysis.plots import figure_panels, parse_figures
    from mobileone_bench.errors import AnalysisError, UsageError
    from mobileone_bench.store.records import ResultsStore

    with pytest.raises(AnalysisError, match="mobileone-bench run"):
        figure_panels(ResultsStore(tmp_path / "empty"), ["latency-vs-flops"])
    with pytest.raises(AnalysisError, match="no latency to plot"):
        figure_panels(store, ["latency-vs-flops"], devices=["mac"])
    with pytest.raises(UsageError, match="unknown figure 'pie'"):
        parse_figures(["pie"])
    assert parse_figures(None) == ["latency-vs-flops", "latency-vs-params", "accuracy-vs-latency"]


def test_cli_plot(store, runner, cli, tmp_path):
    out = tmp_path / "figs"
    result = runner.invoke(cli, ["plot", "--results", str(store.root), "--figure", "latency-vs-flops", "--device",
                                 "gpu", "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    (w,) = json.loads(result.output)
    assert w["points"] == 3 and sorted(p.name for p in out.iterdir()) == ["latency-vs-flops_gpu-tensorrt.png",
                                                                         "latency-vs-flops_gpu-tensorrt.svg"]
    result = runner.invoke(cli, ["plot", "--results", str(store.root), "--figure", "pie"])
    assert result.exit_code == 2 and "unknown figure 'pie'" in result.output
