"""The floor of models/: the registry is a leaf that outside zoos plug into, the checkpoint loader knows no family,
the families share their layers, and re-parameterization never imports the models back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobileone_bench.errors import UnknownModelError
from mobileone_bench.models import checkpoints, registry, sources
from mobileone_bench.models.archs import _layers, activations, micronet, mobileformer, mobilenext, mobileone
from mobileone_bench.models.factory import create_model

grimp = pytest.importorskip("grimp", reason="import-linter (the test extra) brings grimp")

#: What no module of models/ may import: the layers above it, and the results store (models never write records).
ABOVE = ("pipeline", "api", "cli", "_args", "formats", "devices", "analysis", "store", "complexity", "proxies")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("mobileone_bench", include_external_packages=True, exclude_type_checking_imports=True,
                             cache_dir=None)


def test_the_registry_imports_nothing_of_the_package_but_errors(graph):
    imported = graph.find_modules_directly_imported_by("mobileone_bench.models.registry")
    assert {m for m in imported if m.startswith("mobileone_bench")} == {"mobileone_bench.errors"}
    assert not {"torch", "timm", "torchvision"} & imported
    assert graph.find_shortest_chains(importer="mobileone_bench.models.registry",
                                      imported="mobileone_bench.models.archs") == set()


def test_the_checkpoint_loader_knows_no_family(graph):
    assert graph.find_shortest_chains(importer="mobileone_bench.models.checkpoints",
                                      imported="mobileone_bench.models.archs") == set()


def test_no_module_of_models_imports_a_layer_above_it(graph):
    models = {m for m in graph.modules if m.startswith("mobileone_bench.models")}
    for layer in ABOVE:
        target = f"mobileone_bench.{layer}"
        if target in graph.modules:
            assert not any(graph.chain_exists(importer=m, imported=target, as_packages=True) for m in models), layer


def test_reparameterization_never_imports_the_models(graph):
    inside = {m for m in graph.modules if m.startswith("mobileone_bench.reparameterization")}
    imported = set().union(*(graph.find_modules_directly_imported_by(m) for m in inside))
    assert {m for m in imported if m.startswith("mobileone_bench")} - inside == {"mobileone_bench.errors"}


def test_outside_zoos_resolve_through_the_source_hook():
    spec = registry.resolve("timm:resnet18")
    assert (spec.source, spec.name, spec.input_size) == (sources.TIMM, "timm:resnet18", (224, 224))
    assert registry.resolve("tv:resnet18").name == "torchvision:resnet18"
    assert isinstance(spec.factory(), nn.Module)


def test_a_source_plugs_into_resolve_expand_and_errors(monkeypatch):
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))
    names = ("tiny_a", "tiny_b", "other")

    def resolve(name: str) -> registry.ModelSpec:
        if name not in names:
            raise UnknownModelError(f"fake:{name}", [])
        return registry.ModelSpec(f"fake:{name}", "fake", f"fake:{name}", (32, 32), factory=lambda: nn.Identity())

    registry.register_source("fake", resolve, lambda: names, aliases=("fk",))
    assert registry.resolve("FK: tiny_a").name == "fake:tiny_a"
    assert [s.name for s in registry.expand(["fake:tiny_*"])] == ["fake:tiny_a", "fake:tiny_b"]
    with pytest.raises(UnknownModelError) as info:
        registry.resolve("keras:resnet50")
    assert info.value.suggestions == ["timm:<name>", "torchvision:<name>", "fake:<name>"]
    assert isinstance(create_model("fake:other"), nn.Identity)


def test_the_families_share_one_make_divisible_and_one_conv_bn():
    assert mobilenext.make_divisible is _layers.make_divisible is activations.make_divisible
    assert mobileone.SqueezeExcite is _layers.SqueezeExcite
    assert [_layers.make_divisible(v, 8) for v in (44.8, 10, 3)] == [48, 16, 8]
    conv, bn = _layers.conv_bn_layers(4, 6, (3, 1), (2, 1), 2)
    assert (conv.kernel_size, conv.stride, conv.padding, conv.groups, conv.bias) == ((3, 1), (2, 1), (1, 0), 2, None)
    assert isinstance(bn, nn.BatchNorm2d) and bn.num_features == 6
    assert list(_layers.conv_bn(3, 5, 3).state_dict())[:2] == ["0.weight", "1.weight"]


def test_fold_linear_bn_keeps_the_outputs():
    torch.manual_seed(0)
    fc, bn = nn.Linear(6, 5), nn.BatchNorm1d(5)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    seq = nn.Sequential(fc, bn).eval()
    x = torch.randn(3, 6)
    with torch.no_grad():
        before = seq(x)
        _layers.fold_linear_bn(fc, bn)
        torch.testing.assert_close(fc(x), before)
    for head in (micronet.SwishLinear(6, 5), mobileformer.MergeClassifier(8, mobileformer.TABLES["52m"], 10)):
        head.eval().reparameterize()
        assert not any(isinstance(m, nn.BatchNorm1d) for m in head.modules())


def test_a_family_teaches_the_loader_its_layouts(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints, "_ADAPTERS", list(checkpoints._ADAPTERS))
    calls = []

    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.body = nn.Linear(2, 2), nn.Linear(2, 3)

    def from_timm(state):
        calls.append("from_timm")
        return {k.replace("head.fc.", "body."): v for k, v in state.items()}

    checkpoints.register_layout_adapter(Toy, from_timm=from_timm, fit=lambda model, state: calls.append("fit"))
    src = Toy()
    timm_layout = {f"stem.{k}": v for k, v in src.stem.state_dict().items()}
    timm_layout |= {f"head.fc.{k}": v for k, v in src.body.state_dict().items()}
    torch.save(timm_layout, tmp_path / "toy.pth")
    loaded = checkpoints.load_weights(Toy(), tmp_path / "toy.pth")
    assert calls == ["from_timm", "fit"]
    torch.testing.assert_close(loaded.body.weight, src.body.weight)
    assert checkpoints._adapter(nn.Linear(2, 2)) is None
    assert checkpoints._adapter(mobileone.mobileone_tiny()).fit is mobileone.fit_branch_counts
