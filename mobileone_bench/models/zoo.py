"""Aliases for the paper's row names and the named zoos.

The paper's tables (Table 9, 13, 14) name models as ``MobileNetV2-x1.4`` or ``MNASNet-A1``; these aliases let a user
type those names and get the implementation that matches the row (parameter and FLOP counts checked in the tests).
Every row of the paper's tables can be built; :func:`register_unavailable` remains for names the tool knows but
cannot build (it reports the reason instead of failing).
"""

from __future__ import annotations

from mobileone_bench.models.registry import register_alias, register_zoo

__all__: list[str] = []

_HSWISH = ("hardswish->relu",)  # Appendix B: H-swish replaced with ReLU for latency
_SWISH = ("silu->relu",)  # Table 13 note: swish replaced with ReLU in TinyNets

# name, target, paper name, input size (None: the target's default), patches, re-parameterizable
_ALIASES = [
    ("convit-tiny", "timm:convit_tiny", "ConViT-tiny", 224, (), False),
    ("mobilevit-s", "timm:mobilevit_s", "MobileViT-S", 224, (), False),
    ("mobilevit-xs", "timm:mobilevit_xs", "MobileViT-XS", 224, (), False),
    ("mobilevit-xxs", "timm:mobilevit_xxs", "MobileViT-XXS", 224, (), False),
    ("pit-ti", "timm:pit_ti_224", "PiT-ti", 224, (), False),
    ("deit-tiny", "timm:deit_tiny_patch16_224", "DeiT-tiny", 224, (), False),
    ("repvgg-a0", "timm:repvgg_a0", "RepVGG-A0", 224, (), True),
    ("repvgg-a1", "timm:repvgg_a1", "RepVGG-A1", 224, (), True),
    ("repvgg-a2", "timm:repvgg_a2", "RepVGG-A2", 224, (), True),
    ("repvgg-b0", "timm:repvgg_b0", "RepVGG-B0", 224, (), True),
    ("repvgg-b1", "timm:repvgg_b1", "RepVGG-B1", 224, (), True),
    ("repvgg-b2", "timm:repvgg_b2", "RepVGG-B2", 224, (), True),
    ("efficientnet-b0", "timm:efficientnet_b0", "EfficientNet-B0", 224, (), False),
    ("mobilenetv2-x1.4", "timm:mobilenetv2_140", "MobileNetV2-x1.4", 224, (), False),
    ("mobilenetv2-x1.0", "timm:mobilenetv2_100", "MobileNetV2-x1.0", 224, (), False),
    ("mixnet-s", "timm:mixnet_s", "MixNet-S", 224, (), False),
    ("mobilenetv3-l", "timm:mobilenetv3_large_100", "MobileNetV3-L", 224, _HSWISH, False),
    ("mobilenetv3-s", "timm:mobilenetv3_small_100", "MobileNetV3-S", 224, _HSWISH, False),
    ("shufflenetv2-2.0", "torchvision:shufflenet_v2_x2_0", "ShuffleNetV2-2.0", 224, (), False),
    ("shufflenetv2-1.0", "torchvision:shufflenet_v2_x1_0", "ShuffleNetV2-1.0", 224, (), False),
    ("mnasnet-a1", "timm:semnasnet_100", "MNASNet-A1", 224, (), False),
    ("mobilenetv1", "timm:mobilenetv1_100", "MobileNetV1", 224, (), False),
    ("tinynet-d", "timm:tinynet_d", "TinyNet-D", None, _SWISH, False),
    ("tinynet-e", "timm:tinynet_e", "TinyNet-E", None, _SWISH, False),
]
for _name, _target, _paper, _size, _patches, _rep in _ALIASES:
    register_alias(_name, _target, paper_name=_paper, input_size=_size, patches=_patches, reparameterizable=_rep)

# MobileNeXt, Mobile-Former and MicroNet (the last rows no library has) are the tool's own: mobileone_bench.models.archs.


def _paper_rows(table: str) -> list[str]:
    from mobileone_bench.reference import paper_table

    return [row["model"] for row in paper_table(table)["rows"]]


register_zoo("paper-table9", lambda: _paper_rows("table9"), "all 30 rows of the paper's Table 9, in its order")
register_zoo("paper-table13", lambda: _paper_rows("table13"), "the 8 micro-architecture rows of Table 13")
register_zoo("paper-table14", lambda: _paper_rows("table14"), "the 19 rows of Table 14 (adds RepVGG-B2)")
register_zoo("mobileone", ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4",
                           "mobileone_mu0", "mobileone_mu1", "mobileone_mu2"],
             "MobileOne S0-S4 (Table 7) and the micro variants μ0-μ2 (Table 17)")
register_zoo("quick", ["mobileone_s0", "mobileone_s1", "mobileone_s2", "mobilenetv1", "mobilenetv2-x1.0",
                       "mobilenetv3-s", "mobilenetv3-l", "shufflenetv2-1.0", "mnasnet-a1", "efficientnet-b0"],
             "ten small Table 9 CNNs: the default of `run`, a few minutes on a laptop CPU")


register_zoo("ablation-activations", lambda: _paper_rows("table2"),
             "Section 3.2 / Table 2: the 30-layer network with seven activations")
register_zoo("ablation-blocks", lambda: _paper_rows("table3") + ["ablation30-se-skip"],
             "Section 3.2 / Table 3: baseline, + Squeeze-Excite, + skip (and SE + skip, the cumulative reading)")
