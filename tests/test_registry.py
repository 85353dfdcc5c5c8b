"""Registry: names, prefixes, aliases, wildcards, zoos, unavailable rows, patches."""

from __future__ import annotations

import pytest
from torch import nn

from mobileone_bench.models.factory import create_model
from mobileone_bench.models import registry
from mobileone_bench.errors import ModelUnavailableError, UnknownModelError, UsageError


def test_own_model_resolves_with_either_separator_and_any_case():
    for name in ("mobileone_s0", "mobileone-s0", "MobileOne-S0"):
        spec = registry.resolve(name)
        assert spec.name == "mobileone_s0"
        assert spec.source == "own"
        assert spec.reparameterizable is True
        assert spec.input_size == (224, 224)


def test_prefixed_outside_zoos():
    t = registry.resolve("timm:resnet18")
    assert (t.source, t.name, t.input_size) == ("timm", "timm:resnet18", (224, 224))
    tv = registry.resolve("torchvision:mobilenet_v3_small")
    assert tv.source == "torchvision"
    assert isinstance(create_model(tv), nn.Module)


def test_alias_points_to_outside_model_with_paper_name_and_size():
    spec = registry.resolve("mobilevit-xs")
    assert spec.target == "timm:mobilevit_xs"
    assert spec.paper_name == "MobileViT-XS"
    assert spec.input_size == (224, 224)  # the paper evaluates everything at 224, timm's default is 256


@pytest.mark.parametrize("name, expected", [
    ("mobilenetv9", "mobilenetv1"),
    ("mobileone_s7", "mobileone_s4"),
    ("timm:resnet1", "timm:resnet18"),
])
def test_unknown_name_suggests_close_matches(name, expected):
    with pytest.raises(UnknownModelError) as info:
        registry.resolve(name)
    assert expected in info.value.suggestions
    assert "\n" not in str(info.value)


def test_unknown_prefix_and_empty_name():
    with pytest.raises(UnknownModelError):
        registry.resolve("keras:resnet50")
    with pytest.raises(UsageError):
        registry.resolve("  ")


def test_wildcards_expand_in_order_without_duplicates():
    specs = registry.expand(["mobileone_s*", "mobileone-s0"])
    assert [s.name for s in specs] == [f"mobileone_s{i}" for i in range(5)]
    with pytest.raises(UnknownModelError):
        registry.expand(["nothing-matches-*"])
    timm_specs = registry.expand(["timm:repvgg_a*"])
    assert {"timm:repvgg_a0", "timm:repvgg_a1", "timm:repvgg_a2"} <= {s.name for s in timm_specs}


def test_paper_table9_zoo_has_all_30_rows_available():
    specs = registry.expand([], zoo="paper-table9")
    assert len(specs) == 30 and all(s.available for s in specs)
    assert {"mobileformer-96", "mobileformer-52", "mobilenext-x1.4", "mobilenext-x1.0"} <= {s.name for s in specs}
    assert len(registry.expand([], zoo="paper-table9", include_unavailable=False)) == 30


def test_unavailable_rows_are_kept_or_dropped(unavailable_model):
    specs = registry.expand(["mobileone_s0", unavailable_model])
    assert [s.available for s in specs] == [True, False] and "NotBuilt" in specs[1].reason
    assert [s.name for s in registry.expand(["mobileone_s0", unavailable_model], include_unavailable=False)] == [
        "mobileone_s0"]


def test_paper_table13_zoo():
    specs = registry.expand([], zoo="paper-table13")
    assert len(specs) == 8
    assert all(s.available for s in specs)
    assert {"micronet-m1", "micronet-m2", "micronet-m3"} <= {s.name for s in specs}


def test_unknown_zoo_is_a_usage_error():
    with pytest.raises(UsageError, match="paper-table9"):
        registry.zoo_models("paper-table8")


def test_unavailable_model_cannot_be_built(unavailable_model):
    with pytest.raises(ModelUnavailableError, match="NotBuilt"):
        create_model(unavailable_model)


def test_hardswish_patch_follows_appendix_b():
    model = create_model("mobilenetv3-s")
    assert not any(isinstance(m, nn.Hardswish) for m in model.modules())
    original = create_model("timm:mobilenetv3_small_100")
    assert any(isinstance(m, nn.Hardswish) for m in original.modules())


def test_silu_patch_for_tinynet():
    model = create_model("tinynet-e")
    assert not any(isinstance(m, nn.SiLU) for m in model.modules())
    assert registry.resolve("tinynet-e").input_size == (106, 106)


def _zoo_members():
    """Every available model of the paper's zoos (the unavailable ones are tested above)."""
    names = []
    for zoo in ("paper-table9", "paper-table13", "paper-table14"):
        for n in registry.zoo_models(zoo):
            if n not in names and registry.resolve(n).available:
                names.append(n)
    return names


@pytest.mark.slow
@pytest.mark.parametrize("name", _zoo_members())
def test_every_available_paper_model_builds_and_runs(name):
    import torch

    spec = registry.resolve(name)
    model = create_model(spec)
    assert not model.training
    with torch.no_grad():
        out = model(torch.randn(registry.input_shape(spec)))
    assert out.shape == (1, 1000)
