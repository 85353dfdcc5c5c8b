"""``report``: one self-contained HTML page of a store (issue 31), checked without a browser (the browser checks are
in tests/test_report_browser.py). Every record here is made by ``pipeline.recording`` (the one maker of records),
as a run, a contended measurement, a failure, a host profiler and Core ML's compute plan would make them."""

from __future__ import annotations

from collections import Counter

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import mobileone_bench as mb
from mobileone_bench.errors import AnalysisError
from mobileone_bench.pipeline import recording
from mobileone_bench.store.operators import KIND as EXPLAIN, operator_row
from mobileone_bench.store.records import ResultsStore

SHAPE = "1x3x224x224"
ENV = {"env_machine": "reportmachine", "env_cpu": "Test CPU", "env_os": "Linux-test", "env_python": "3.11.7",
       "env_tool": "0.1.0", "env_torch": "2.15.0", "env_onnxruntime": "1.32.0"}
#: model -> (FLOPs M, params M, CPU median ms): six Table 9 models, so that Table 1 (>= 5 models) has a coefficient
MODELS = {"mobileone_s0": (275.1, 2.08, 6.1), "mobileone_s1": (825.4, 4.76, 11.9), "mobilenetv1": (575.0, 4.2, 8.3),
          "mobilenetv3-s": (56.0, 2.5, 2.2), "efficientnet-b0": (385.8, 5.27, 12.4), "mnasnet-a1": (312.0, 3.9, 8.9)}


def _identity(model: str, kind: str = "latency", **extra: Any) -> dict[str, Any]:
    base = {"model": model, "target": model, "patches": [], "weights_sha256": None, "input_shape": SHAPE}
    if kind == "latency":
        base.update(reparameterized=True, device="cpu", runtime="onnxruntime", precision="fp32", threads=1, warmup=2,
                    runs=40, runtime_options={}, machine="reportmachine", versions={"onnxruntime": "1.32.0"},
                    protocol="interleaved", rounds=4)
    return {**base, **extra}


def _samples(median: float, n: int = 40) -> list[float]:
    return [median * (1 + 0.002 * ((i * 7) % 11 - 5)) for i in range(n)]


def add_profile(store: ResultsStore, model: str) -> dict[str, Any]:
    flops, params, _ = MODELS[model]
    fields = {"status": "ok", "error": None, "paper_name": None, "flops": int(flops * 1e6), "params": int(params * 1e6),
              "flops_m": flops, "params_m": params, "activations_m": flops / 60, "memory_mb_fp32": params * 8,
              "memory_mb_fp16": params * 4, "depth": int(params * 10), "counter": "test"}
    return recording.append_record(store, "profile", _identity(model, "profile", counter="test"), fields, {})


def add_latency(store: ResultsStore, model: str, *, contended: bool = False, replaced: bool = False,
                status: str = "ok", runtime: str = "onnxruntime", threads: int = 1) -> dict[str, Any]:
    median = MODELS[model][2]
    samples = _samples(median)
    used = [True, False, True, True, True] if replaced else [True, True, True, True]
    values = [median * f for f in (1.0, 1.4, 0.99, 1.01, 1.0)[:len(used)]]
    fields: dict[str, Any] = {
        "status": status, "error": None if status == "ok" else "MeasurementError: the runtime crashed",
        "report": "median", "paper_name": None, "source": "measured", "artifact_format": "onnx",
        "artifact_path": f"models/{model}/onnx-fp32-224x224/model.onnx", "artifact_sha256": "ab" * 32,
        "round_values_ms": json.dumps(values), "round_used": json.dumps(used),
        "round_contended": json.dumps([not u for u in used]), "rounds_replaced": used.count(False),
        "contended": contended, "contended_share": 0.6 if contended else 0.0, "contention_source": "schedstat"}
    return recording.append_latency(store, _identity(model, runtime=runtime, threads=threads), fields, ENV,
                                    samples if status == "ok" else None, report="median")


def add_explain(store: ResultsStore, model: str, *, plan: bool = False) -> dict[str, Any]:
    if plan:  # Core ML's compute plan: estimated cost shares and the device each operation runs on
        rows = [operator_row(name="conv_0", op_type="ios17.conv", category="dense-conv", cost=0.5, share=0.5,
                             device="neural-engine", supported_devices=["neural-engine", "gpu", "cpu"]),
                operator_row(name="dw_1", op_type="ios17.conv", category="depthwise-conv", cost=0.3, share=0.3,
                             device="gpu", supported_devices=["gpu", "cpu"]),
                operator_row(name="pool", op_type="ios17.reduce_mean", category="pooling", cost=0.2, share=0.2,
                             device="cpu", supported_devices=["cpu"])]
        ident = _identity(model, EXPLAIN, device="iphone", runtime="coreml", precision="fp16",
                          artifact_sha256="cd" * 32)
        fields = {"status": "ok", "error": None, "source": "compute-plan", "operators": rows}
    else:
        rows = [operator_row(name="Conv_0", op_type="Conv", category="dense-conv", time_ms=3.0, share=0.6,
                             flops=200e6, gflops_per_s=66.7),
                operator_row(name="Relu_1", op_type="Relu", category="activation", time_ms=1.5, share=0.3),
                operator_row(name="GlobalAveragePool", op_type="GlobalAveragePool", category="pooling", time_ms=0.5,
                             share=0.1)]
        ident = _identity(model, EXPLAIN, device="cpu", runtime="onnxruntime", precision="fp32",
                          artifact_sha256="ab" * 32)
        fields = {"status": "ok", "error": None, "source": "profiler", "operators": rows, "total_op_ms": 5.0,
                  "e2e_ms": 6.1, "coverage": 5.0 / 6.1, "coverage_ok": True, "profiler_overhead": 0.05}
    from mobileone_bench.store.operators import category_totals

    fields["categories"] = category_totals(rows)
    return recording.append_record(store, EXPLAIN, ident, fields, ENV)


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> dict[str, Any]:
    """A store with every part of the page, and the page written once."""
    root = tmp_path_factory.mktemp("full")
    store = ResultsStore(root / "results")
    records: dict[str, Any] = {}
    for model in MODELS:
        add_profile(store, model)
        records[model] = add_latency(store, model, replaced=model == "mobileone_s0")
    records["contended"] = add_latency(store, "mnasnet-a1", contended=True)  # newer, contended: not used
    records["failed"] = add_latency(store, "mobilenetv1", runtime="torch", status="failed")
    records["explain"] = add_explain(store, "mobileone_s0")
    records["plan"] = add_explain(store, "mobileone_s0", plan=True)
    out = root / "report.html"
    written = mb.report(store.root, out=out)
    return {"root": store.root, "records": records, "written": written, "html": out.read_text(encoding="utf-8"),
            "out": out}


class _Page(HTMLParser):
    """What the tests look at in the page: every tag with its attributes, ids, text of <title>s, <style>/<script>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.ids: set[str] = set()
        self.titles: list[str] = []
        self.styles: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
        self._in.append(tag)
        if tag in ("title", "style", "script"):
            self.titles.append("") if tag == "title" else self.styles.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "title":
            self.titles[-1] += data
        elif self._in and self._in[-1] in ("style", "script"):
            self.styles[-1] += data


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_the_page_holds_every_part_of_the_study(full):
    written = full["written"]
    assert written["out"] == str(full["out"]) and written["bytes"] == len(full["html"].encode("utf-8"))
    assert written["tables"] == ["table-1", "proxy-ranking", "table9", "table14"]
    # one CPU onnxruntime panel per figure: Figures 1, 2 (x2) and three proxies; and where the time goes (stacked
    # bars, time share vs FLOP share) for each device and runtime with explain records: cpu onnxruntime, iphone coreml
    assert written["figures"] == 6 + 2 * 2
    page = parse(full["html"])
    for section in ("measured", "conditions", "table-1", "proxy-ranking", "table9", "table9-agreement", "table14",
                    "figures", "models"):
        assert section in page.ids, section
    assert written["missing"] == []  # profile, latency and explain records: nothing lacking
    text = re.sub(r"<[^>]+>", " ", full["html"])
    assert "Kendall tau" in text and "95% CI" in text
    assert "2.15.0" in text and "Test CPU" in text  # versions and machine in the header


def test_no_request_of_any_kind_leaves_the_page(full):
    page = parse(full["html"])
    for tag, attrs in page.tags:
        for key in ("src", "href", "xlink:href", "action", "poster", "data"):
            value = attrs.get(key, "")
            assert not re.match(r"\s*(https?:)?//", value), (tag, key, value)
        assert not (tag == "link" and "stylesheet" in attrs.get("rel", "")), attrs
        assert not (tag == "script" and "src" in attrs), attrs
        assert tag not in ("iframe", "img", "object", "embed"), tag
    for text in page.styles + [a.get("style", "") for _, a in page.tags]:
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", text), text[:200]
        assert "@import" not in text and "@font-face" not in text
    assert re.search(r"https?://", "".join(page.styles)) is None  # the CSS and script name no URL at all


def test_every_point_of_a_figure_names_its_model_and_record(full):
    page = parse(full["html"])
    used = {m: full["records"][m]["record_id"] for m in MODELS if m != "mnasnet-a1"}
    for model, rid in used.items():
        titled = [t for t in page.titles if f"({model})" in t]
        assert len(titled) == 6 and all(rid in t for t in titled), (model, titled)
    # mnasnet-a1's newest record is contended: its point is the older, quiet one
    titled = [t for t in page.titles if "(mnasnet-a1)" in t]
    assert titled and all(full["records"]["mnasnet-a1"]["record_id"] in t for t in titled)
    assert any(t.startswith("paper: ") for t in page.titles)  # the paper's points too


def test_every_link_leads_somewhere_in_the_page_and_every_record_has_an_anchor(full):
    page = parse(full["html"])
    targets = [a["href"][1:] for tag, a in page.tags if tag == "a" and a.get("href", "").startswith("#")]
    assert targets and set(targets) <= page.ids
    for rec in full["records"].values():
        assert f"rec-{rec['record_id']}" in page.ids, rec["kind"]
    # Table 9's latency cells link to the record each number is
    table9 = full["html"].split('id="table9"', 1)[1].split("</table>", 1)[0]
    for model in ("mobileone_s0", "efficientnet-b0"):
        assert f'href="#rec-{full["records"][model]["record_id"]}"' in table9


def test_the_conditions_say_what_was_left_out_and_why(full):
    text = " ".join(re.sub(r"<[^>]+>", " ", full["html"]).split())
    assert "1 of 7 successful latency record(s) flagged contended" in text
    assert "1 contended round(s) replaced" in text
    assert f"record {full['records']['contended']['record_id']}): contended (60% of the runs)" in text
    assert f"record {full['records']['failed']['record_id']}): MeasurementError: the runtime crashed" in text
    assert "contended latency records (measured while other processes used the CPU) are not used" in text


def test_each_record_shows_its_distribution_rounds_environment_and_artifact(full):
    rid = full["records"]["mobileone_s0"]["record_id"]
    part = full["html"].split(f'id="rec-{rid}"', 1)[1].split('<div class="record', 1)[0]
    page = parse(part)
    bars = [a for tag, a in page.tags if tag == "rect" and a.get("class") == "bar"]
    # the histogram's non-empty bins, not the 40 samples: the samples take 11 values spread evenly over the range, so
    # each falls in a bin of its own (30 bins), and each bar holds as many runs as its value has samples
    samples = ResultsStore(full["root"]).samples(dict(full["records"]["mobileone_s0"]))
    per_bar = [int(re.search(r": (\d+) run", t).group(1)) for t in page.titles if " run(s)" in t]
    assert len(samples) == 40 and len(bars) == len(per_bar) == len(set(samples)) == 11
    assert sorted(per_bar) == sorted(Counter(samples).values())
    rounds = [a for tag, a in page.tags if tag == "circle"]
    assert [a["class"] for a in rounds] == ["round", "round replaced", "round", "round", "round"]
    assert any("replaced: does not count" in t for t in page.titles)
    text = re.sub(r"<[^>]+>", " ", part)
    assert "ab" * 32 in text and "model.onnx" in text and "models/mobileone_s0" not in text  # hash, file name
    assert "Test CPU" in text and "1.32.0" in text


def test_the_operator_breakdowns_show_where_the_time_goes_and_the_core_ml_placement(full):
    html = full["html"]
    profiler = html.split(f'id="rec-{full["records"]["explain"]["record_id"]}"', 1)[1].split("</details>", 1)[0]
    text = " ".join(re.sub(r"<[^>]+>", " ", profiler).split())
    assert "profiler" in text and "coverage 82%" in text
    assert "dense-conv 1 3 60.0%" in text and "activation 1 1.5 30.0%" in text
    plan = html.split(f'id="rec-{full["records"]["plan"]["record_id"]}"', 1)[1].split("</details>", 1)[0]
    text = " ".join(re.sub(r"<[^>]+>", " ", plan).split())
    assert "compute-plan, cost shares" in text and "Compute placement" in text
    assert "neural-engine 1 50.0%" in text and "gpu 1 30.0%" in text and "cpu 1 20.0%" in text
    labels = {a.get("aria-label") for tag, a in parse(html).tags if tag == "svg" and "figure-svg" in a.get("class", "")}
    for title in ("Where the time goes: cpu onnxruntime", "Where the time goes: iphone coreml",
                  "Time share vs FLOP share per category: cpu onnxruntime"):
        assert title in labels, sorted(x for x in labels if x)


def test_the_cli_writes_the_page_and_says_what_it_wrote(runner, cli, full, tmp_path):
    out = tmp_path / "sub" / "study.html"
    result = runner.invoke(cli, ["report", "--results", str(full["root"]), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    said = json.loads(result.stdout)
    assert said["out"] == str(out) and out.stat().st_size == said["bytes"]


@pytest.mark.parametrize("make", ["missing", "empty-folder", "empty-file"])
def test_an_empty_or_missing_store_is_one_line_and_a_non_zero_exit(runner, cli, tmp_path, make):
    folder = tmp_path / "results"
    if make != "missing":
        folder.mkdir()
    if make == "empty-file":
        (folder / "records.jsonl").write_text("", encoding="utf-8")
    out = tmp_path / "report.html"
    result = runner.invoke(cli, ["report", "--results", str(folder), "--out", str(out)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(folder) in lines[0], result.output
    assert "run `mobileone-bench run` first" in lines[0]
    assert not out.exists()
    with pytest.raises(AnalysisError):
        mb.report(folder, out=out)


def test_a_profile_only_store_gives_the_page_with_what_exists_and_what_is_missing(tmp_path):
    store = ResultsStore(tmp_path / "results")
    for model in MODELS:
        add_profile(store, model)
    written = mb.report(store.root, out=tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert written["tables"] == ["table9", "table14"] and written["figures"] == 0  # FLOPs and params still fill them
    assert any(m.startswith("latency: no latency record") for m in written["missing"])
    assert "Not in this page (the store lacks it)" in html and "latency: no latency record" in html
    assert parse(html).titles[0] == "mobileone-bench report: 6 models, 6 records"


def test_latency_without_profile_says_table_1_and_figures_need_flops(tmp_path, runner, cli):
    store = ResultsStore(tmp_path / "results")
    for model in MODELS:
        add_latency(store, model)
    result = runner.invoke(cli, ["report", "--results", str(store.root), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "not in the page: profile: no profile record" in result.stderr
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="table9"' in html and 'id="table-1"' not in html
    page = parse(html)
    assert all(f"rec-{r['record_id']}" in page.ids for r in store.records("latency"))


def test_a_large_store_stays_a_page_of_a_few_megabytes(tmp_path):
    """126 records: six models on two runtimes at ten thread counts (120 latency records, each shown with its
    distribution: 30 bins' counts, not its samples) and their profiles; the figures are per device and runtime."""
    store = ResultsStore(tmp_path / "results")
    for model in MODELS:
        add_profile(store, model)
    for threads in range(1, 11):
        for runtime in ("onnxruntime", "torch"):
            for model in MODELS:
                add_latency(store, model, runtime=runtime, threads=threads)
    written = mb.report(store.root, out=tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert written["records"] == 126 and written["figures"] == 12
    assert html.count('<div class="record') == 120
    assert written["bytes"] < 3_000_000, written["bytes"]
    figures = sum(len(m) for m in re.findall(r'<figure id="fig-.*?</figure>', html, flags=re.S))
    per_record = (written["bytes"] - figures) / 120
    assert per_record < 12_000, per_record


def test_the_template_and_assets_ship_with_the_package():
    """``pip install mobileone-bench`` must carry the page's template, CSS and script: every file of
    mobileone_bench/data/report/ matches a package_data pattern of setup.cfg."""
    import configparser
    import fnmatch

    from mobileone_bench.analysis.report import ASSETS, TEMPLATE

    root = Path(__file__).resolve().parents[1]
    config = configparser.ConfigParser()
    config.read(root / "setup.cfg", encoding="utf-8")
    patterns = [p.strip() for p in re.split(r"[,\n]", config["options.package_data"]["mobileone_bench"]) if p.strip()]
    folder = root / "mobileone_bench" / "data" / "report"
    files = sorted(p.relative_to(folder.parent.parent).as_posix() for p in folder.iterdir())
    assert {Path(f).name for f in files} == {TEMPLATE, *ASSETS}
    assert all(any(fnmatch.fnmatch(f, p) for p in patterns) for f in files), (files, patterns)
    assert "jinja2" in config["options"]["install_requires"].lower()
