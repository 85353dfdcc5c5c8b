"""The paper's Table 9 / Table 14 layouts filled from fixture records, in every output format."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.test_analysis_fixtures import FIXTURES, add_latency, build_store, expected, load_spec


@pytest.fixture
def store(tmp_path):
    return build_store(tmp_path / "results")


def _rows(table):
    return [r for g in table["groups"] for r in g["rows"]]


def test_table9_groups_order_and_missing(store):
    from mobileone_bench.reference import paper_table
    from mobileone_bench.analysis.tables import build_table

    table = build_table(store, "table9")
    assert [g["name"] for g in table["groups"]] == ["Transformer Architectures", "Convolutional Architectures"]
    transformers, cnns = (g["rows"] for g in table["groups"])
    # every transformer row has our iPhone latency: sorted by it, descending (MobileViT-XXS 5.2 > DeiT-tiny 4.9,
    # the reverse of the paper's order)
    assert [r["model"] for r in transformers] == ["mobilevit-xxs", "deit-tiny"]
    # not every CNN row has one: the paper's order
    paper_order = [r["model"] for r in paper_table("table9")["rows"]]
    assert [r["model"] for r in cnns] == [m for m in paper_order if m in {r["model"] for r in cnns}]
    # default rows: the layout's models with a record (timm:resnet18 is not in Table 9)
    assert {r["model"] for r in _rows(table)} == {m for m in expected("cpu", "onnxruntime") if m != "timm:resnet18"}
    by = {r["model"]: r for r in _rows(table)}
    assert by["mobileone_s0"]["cpu_ms"] == pytest.approx(2.1) and by["mobileone_s0"]["iphone_ms"] == pytest.approx(0.8)
    assert by["mobileone_s0"]["flops_m"] == pytest.approx(275.1) and by["mobileone_s0"]["top1"] == 71.4
    assert by["mixnet-s"]["flops_m"] is None and by["repvgg-a0"]["gpu_ms"] is None
    assert table["agreement"] is None
    headers = [c["header"] for c in table["columns"]]
    assert headers == ["Model", "Top-1 (%, paper)", "FLOPs (M)", "Params (M)", "CPU onnxruntime (ms, median of 100)",
                       "GPU tensorrt (ms, median of 100)", "iPhone coreml (ms, min of 1000)"]
    assert any("onnxruntime, fp32, 4 thread(s), latency = median of 100 runs, Fixture CPU" in f
               for f in table["footnotes"])
    assert any("also stored: torch" in f for f in table["footnotes"])


def test_sorted_by_our_iphone_when_a_group_is_complete(store):
    from mobileone_bench.analysis.tables import build_table

    table = build_table(store, "table9", models=["mobileone_s0", "mobileone_s1", "mobilenetv2-x1.0",
                                                 "mobilenetv3-l", "efficientnet-b0"])
    (cnns,) = table["groups"]
    assert [r["iphone_ms"] for r in cnns["rows"]] == sorted((r["iphone_ms"] for r in cnns["rows"]), reverse=True)
    assert "by our iPhone latency" in table["sort"]


def test_compare_puts_the_paper_beside_ours_and_rank_agreement(store):
    from mobileone_bench.analysis.tables import build_table

    table = build_table(store, "table9", compare=True)
    keys = [c["key"] for c in table["columns"]]
    assert keys == ["name", "top1", "flops_m", "paper_flops_m", "params_m", "paper_params_m", "cpu_ms",
                    "paper_cpu_ms", "gpu_ms", "paper_gpu_ms", "iphone_ms", "paper_iphone_ms"]
    assert [c["paper"] for c in table["columns"]].count(True) == 5
    by = {r["model"]: r for r in _rows(table)}
    assert (by["mobileone_s0"]["paper_cpu_ms"], by["mobileone_s0"]["paper_iphone_ms"]) == (10.55, 0.79)
    assert by["deit-tiny"]["paper_gpu_ms"] == 1.78 and by["mobilevit-xxs"]["paper_gpu_ms"] is None  # paper's '-'
    assert by["mixnet-s"]["paper_flops_m"] == 256.0
    agreement = {(a["device"], a["runtime"]): a for a in table["agreement"]}
    assert agreement[("iphone", "coreml")]["n"] == 8 and agreement[("iphone", "coreml")]["rho"] > 0.9
    assert agreement[("gpu", "tensorrt")]["rho"] is None


def test_all_rows_and_other_models(store):
    from mobileone_bench.analysis.tables import OTHER_GROUP, build_table

    table = build_table(store, "table9", all_rows=True)
    assert len(_rows(table)) == 30
    by = {r["model"]: r for r in _rows(table)}
    assert by["mobileformer-96"]["cpu_ms"] is None and by["mobileformer-96"]["top1"] == 72.8
    table = build_table(store, "table9", models=["mobileone_s0", "timm:resnet18"])
    assert [g["name"] for g in table["groups"]] == ["Convolutional Architectures", OTHER_GROUP]
    assert table["groups"][1]["rows"][0]["top1"] is None and table["groups"][1]["rows"][0]["flops_m"] == 1814.0


def test_table14_layout(store):
    from mobileone_bench.analysis.tables import build_table

    table = build_table(store, "table14", compare=True)
    assert [g["name"] for g in table["groups"]] == [None]
    keys = [c["key"] for c in table["columns"]]
    assert keys[-2:] == ["pixel6_ms", "paper_pixel6_ms"]
    # --compare covers every row's FLOPs and params: Table 9's figures, RepVGG-B2's from the RepVGG paper
    assert {"flops_m", "paper_flops_m", "params_m", "paper_params_m"} <= set(keys)
    rows = _rows(table)
    assert all(r["pixel6_ms"] is None for r in rows)
    names = [r["name"] for r in rows]
    assert names.index("EfficientNet-B0") < names.index("MobileOne-S2") < names.index("MobileOne-S0")
    assert {r["model"]: r for r in rows}["mnasnet-a1"]["top1"] == 75.8  # Table 14's own figure
    every = _rows(build_table(store, "table14", compare=True, all_rows=True))
    assert len(every) == 19 and all(r["paper_flops_m"] and r["paper_params_m"] for r in every)
    b2 = {r["model"]: r for r in every}["repvgg-b2"]
    assert (b2["paper_flops_m"], b2["paper_params_m"]) == (18400.0, 80.3)
    footnotes = build_table(store, "table14", compare=True, all_rows=True)["footnotes"]
    assert any("RepVGG-B2" in n and "not the MobileOne paper" in n for n in footnotes)
    assert {r["model"]: r for r in rows}["mobileone_s0"]["paper_flops_m"] == 275.0
    assert "Paper iPhone 12" in [c["header"] for c in table["columns"]]


def test_runtime_and_threads_choose_the_records(store):
    from mobileone_bench.analysis.tables import build_table

    table = build_table(store, "table9", runtimes=["torch"])
    by = {r["model"]: r for r in _rows(table)}
    assert by["mobileone_s0"]["cpu_ms"] == pytest.approx(3.0) and by["mobileone_s2"]["cpu_ms"] is None
    assert "CPU torch (ms, median of 100)" in [c["header"] for c in table["columns"]]
    table = build_table(store, "table9", threads=1, models=["mobileone_s0"])
    assert _rows(table)[0]["cpu_ms"] == pytest.approx(7.7)


def test_several_runtimes_get_a_column_each(store, runner, cli):
    from mobileone_bench.analysis.tables import build_table, render

    default = build_table(store, "table9")
    default_s0 = next(r for r in _rows(default) if r["model"] == "mobileone_s0")["cpu_ms"]
    assert default_s0 is not None and default_s0 != pytest.approx(3.0)
    assert not any(c["key"] == "cpu_torch_ms" for c in default["columns"])
    assert any("also stored: torch" in f for f in default["footnotes"])
    for asked in (["onnxruntime", "torch"], ["all"]):
        table = build_table(store, "table9", runtimes=asked)
        keys = [c["key"] for c in table["columns"]]
        assert keys.index("cpu_torch_ms") == keys.index("cpu_ms") + 1  # beside the chosen runtime's column
        headers = [c["header"] for c in table["columns"]]
        assert "CPU onnxruntime (ms, median of 100)" in headers and "CPU torch (ms, median of 100)" in headers
        by = {r["model"]: r for r in _rows(table)}
        assert by["mobileone_s0"]["cpu_torch_ms"] == pytest.approx(3.0) and by["mobileone_s2"]["cpu_torch_ms"] is None
        assert by["mobileone_s0"]["cpu_ms"] == pytest.approx(default_s0)  # the chosen runtime's column unchanged
        assert not any("also stored: torch" in f for f in table["footnotes"])
    torch_first = build_table(store, "table9", runtimes=["torch", "onnxruntime"])
    assert {c["key"] for c in torch_first["columns"]} >= {"cpu_ms", "cpu_onnxruntime_ms"}
    assert "CPU torch (ms, median of 100)" == next(c["header"] for c in torch_first["columns"] if c["key"] == "cpu_ms")
    md = render(build_table(store, "table9", runtimes=["all"]), "md")
    assert "CPU torch (ms, median of 100)" in md and "CPU onnxruntime (ms, median of 100)" in md
    result = runner.invoke(cli, ["table", "--results", str(store.root), "--runtime", "onnxruntime,torch",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "cpu_torch_ms" in json.loads(result.stdout)["rows"][0]


def test_mixed_statistics_are_said(tmp_path):
    from mobileone_bench.analysis.tables import build_table
    from mobileone_bench.store.records import ResultsStore

    store = ResultsStore(tmp_path)
    add_latency(store, "mobileone_s0", 2.0)
    add_latency(store, "mobileone_s1", 3.0, report="min")
    table = build_table(store, "table9")
    assert "CPU onnxruntime (ms, mixed statistics)" in [c["header"] for c in table["columns"]]
    assert any("different statistics (median of 100, min of 100)" in f for f in table["footnotes"])


def test_errors(store, tmp_path):
    from mobileone_bench.analysis.tables import build_table, render
    from mobileone_bench.errors import AnalysisError, UsageError
    from mobileone_bench.store.records import ResultsStore

    with pytest.raises(UsageError, match="unknown layout 'table99'"):
        build_table(store, "table99")
    with pytest.raises(AnalysisError, match="mobileone-bench run"):
        build_table(ResultsStore(tmp_path / "empty"), "table9")
    with pytest.raises(AnalysisError, match="no records for"):
        build_table(store, "table9", models=["mobileone_s4"])
    with pytest.raises(UsageError, match="unknown table format"):
        render(build_table(store, "table9"), "xlsx")


# ------------------------------------------------------------------------------------------------------ writers


def _small(store):
    from mobileone_bench.analysis.tables import build_table

    return build_table(store, "table9", models=["deit-tiny", "mobileone_s0", "mobilenetv3-s", "mixnet-s"],
                       compare=True)


def test_markdown_golden(store):
    from mobileone_bench.analysis.tables import render

    text = render(_small(store), "md")
    golden = (FIXTURES / "table9_compare.md").read_text(encoding="utf-8")
    assert text == golden


def test_csv_structure(store):
    from mobileone_bench.analysis.tables import render

    rows = list(csv.reader(io.StringIO(render(_small(store), "csv"))))
    assert rows[0][:3] == ["Group", "Model", "Top-1 (%, paper)"] and "Paper CPU" in rows[0]
    assert [r[0] for r in rows[1:]] == ["Transformer Architectures"] + ["Convolutional Architectures"] * 3
    assert [r[1] for r in rows[1:]] == ["DeiT-tiny", "MixNet-S", "MobileNetV3-S", "MobileOne-S0"]
    mixnet = dict(zip(rows[0], rows[2]))
    assert mixnet["FLOPs (M)"] == "-" and mixnet["Paper FLOPs"] == "256" and mixnet["Paper GPU"] == "2.41"


def test_latex_is_booktabs_with_groups_and_escapes(store):
    from mobileone_bench.analysis.tables import render

    text = render(_small(store), "latex")
    for piece in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{lrrrrrrrrrrr}",
                  r"\multicolumn{12}{l}{\textit{Transformer Architectures}} \\",
                  r"Top-1 (\%, paper)",
                  r"DeiT-tiny & 72.2 & 1258 & 1300 & 5.7 & 5.9 & 5.50 & 16.68 & - & 1.78 & 4.90 & 4.78 \\"):
        assert piece in text, piece
    assert text.count(r"\\") == 1 + 2 + 4  # header, two group rows, four model rows


def test_json_rows(store):
    from mobileone_bench.analysis.tables import render

    out = json.loads(render(_small(store), "json"))
    assert [r["group"] for r in out["rows"]] == ["Transformer Architectures"] + ["Convolutional Architectures"] * 3
    mixnet = out["rows"][1]
    assert mixnet["flops_m"] is None and mixnet["paper_flops_m"] == 256.0
    assert out["agreement"] is not None and out["compare"] is True


@pytest.mark.parametrize("fmt, marker", [("rich", "Transformer Architectures"), ("md", "| **Convolutional"),
                                         ("csv", "Group,Model"), ("latex", r"\toprule"), ("json", '"rows"')])
def test_cli_table_every_format(store, runner, cli, fmt, marker):
    result = runner.invoke(cli, ["table", "--results", str(store.root), "--format", fmt, "--compare"])
    assert result.exit_code == 0, result.output
    assert marker in result.output
    if fmt == "rich":
        assert "Rank agreement with the paper" in result.output and "Paper CPU" in result.output


def test_cli_table_out_file_format_from_suffix(store, runner, cli, tmp_path):
    out = tmp_path / "t" / "table14.tex"
    result = runner.invoke(cli, ["table", "--results", str(store.root), "--layout", "table14", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith("% requires \\usepackage{booktabs}")
    txt = tmp_path / "t.txt"
    result = runner.invoke(cli, ["table", "--results", str(store.root), "--out", str(txt), "mobileone_s0"])
    assert result.exit_code == 0, result.output
    assert "MobileOne-S0" in txt.read_text(encoding="utf-8")


def test_cli_table_model_names_resolve_aliases(store, runner, cli):
    result = runner.invoke(cli, ["table", "--results", str(store.root), "MobileOne-S0", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert [r["model"] for r in json.loads(result.output)["rows"]] == ["mobileone_s0"]


def test_golden_file_is_small_and_reviewed():
    golden = FIXTURES / "table9_compare.md"
    assert golden.stat().st_size < 4000
    assert load_spec()["about"].startswith("Hand-made")
    assert Path(golden).read_text(encoding="utf-8").count("\n| ") >= 6
