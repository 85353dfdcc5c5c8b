"""Loading local checkpoints: Apple's unfused and fused layouts, timm's layout, and clear errors."""

from __future__ import annotations

import pytest
import torch

from mobileone_bench.models.factory import create_model
from mobileone_bench.models.checkpoints import detect_layout, load_weights, read_state_dict
from mobileone_bench.errors import CheckpointError
from mobileone_bench.reparameterization import calibrate_bn, compare_outputs, reparameterize
from tests.conftest import randomize_bn

SHAPE = (1, 3, 64, 64)


def _trained_like(name):
    torch.manual_seed(1)
    model = create_model(name)
    randomize_bn(model, seed=2)
    calibrate_bn(model, SHAPE)
    return model


def _same_outputs(a, b):
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        result = compare_outputs(a.eval()(x), b.eval()(x), atol=1e-5, rtol=1e-4)
    assert result.passed, result


def test_apple_unfused_layout_nested_in_pth_tar(tmp_path):
    src = _trained_like("mobileone_s1")
    path = tmp_path / "mobileone_s1_unfused.pth.tar"
    torch.save({"epoch": 300, "state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, path)
    assert "stage0.rbr_conv.0.conv.weight" in read_state_dict(path)
    loaded = create_model("mobileone_s1", weights=str(path))
    _same_outputs(src, loaded)


def test_apple_s0_with_single_branch_stem_loads_into_table7_model(tmp_path):
    # Apple's S0 checkpoints have one conv branch in the stem where Table 7 lists k = 4.
    src = create_model("mobileone_s0")
    src.stage0.set_num_branches(1)
    randomize_bn(src, seed=3)
    calibrate_bn(src, SHAPE)
    path = tmp_path / "mobileone_s0_unfused.pth.tar"
    torch.save(src.state_dict(), path)
    loaded = create_model("mobileone_s0", weights=str(path))
    assert loaded.stage0.num_branches == 1 and loaded.stage1[0].num_branches == 4
    _same_outputs(src, loaded)


def test_apple_fused_layout(tmp_path):
    src = reparameterize(_trained_like("mobileone_s2"))
    path = tmp_path / "mobileone_s2.pth.tar"
    torch.save(src.state_dict(), path)
    assert detect_layout(read_state_dict(path)) == "fused"
    loaded = create_model("mobileone_s2", weights=str(path))
    assert loaded.stage1[0].reparam_conv is not None
    _same_outputs(src, loaded)


@pytest.mark.parametrize("variant", ["s0", "s4"])
def test_timm_layout_gives_timms_outputs(tmp_path, variant):
    timm_model = _trained_like(f"timm:mobileone_{variant}")
    path = tmp_path / f"timm_mobileone_{variant}.pth"
    torch.save(timm_model.state_dict(), path)
    assert detect_layout(read_state_dict(path)) == "timm"
    ours = create_model(f"mobileone_{variant}", weights=str(path))
    _same_outputs(timm_model, ours)


def test_safetensors_file(tmp_path):
    from safetensors.torch import save_file

    src = _trained_like("mobileone_tiny")
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    _same_outputs(src, create_model("mobileone_tiny", weights=str(path)))


def test_mismatched_checkpoint_names_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "s0.pth"
    torch.save(create_model("mobileone_s0").state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        create_model("mobileone_s4", weights=str(path))
    msg = str(info.value)
    assert "missing keys" in msg and "se.reduce" in msg
    other = tmp_path / "resnet.pth"
    torch.save(create_model("timm:resnet18").state_dict(), other)
    with pytest.raises(CheckpointError, match=r"\d+ missing keys .*; \d+ unexpected keys"):
        create_model("mobileone_tiny", weights=str(other))


def test_wrong_shapes_are_named(tmp_path):
    path = tmp_path / "tiny10.pth"
    torch.save(create_model("mobileone_tiny", num_classes=10).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"linear.weight \(10, 64\) vs model \(1000, 64\)"):
        create_model("mobileone_tiny", weights=str(path))


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "corrupt.pth.tar"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="not a PyTorch or safetensors checkpoint"):
        create_model("mobileone_tiny", weights=str(bad))
    with pytest.raises(CheckpointError, match="not found"):
        create_model("mobileone_tiny", weights=str(tmp_path / "nope.pth"))
    empty = tmp_path / "empty.pth"
    torch.save({"epoch": 3}, empty)
    with pytest.raises(CheckpointError, match="no tensors"):
        load_weights(create_model("mobileone_tiny"), empty)


class _TrainConfig:
    """A custom class pickled next to the weights (what an allow-list must not let through)."""

    lr = 0.1


def test_training_args_are_allowed_and_other_objects_refused(tmp_path):
    import argparse

    state = _trained_like("mobileone_tiny").state_dict()
    with_args = tmp_path / "with_args.pth.tar"
    torch.save({"args": argparse.Namespace(lr=0.1, arch="x"), "state_dict": state}, with_args)
    assert read_state_dict(with_args).keys() == state.keys()
    other = tmp_path / "with_counter.pth.tar"
    torch.save({"config": _TrainConfig(), "state_dict": state}, other)  # a class not on the allow-list
    with pytest.raises(CheckpointError, match="refuses to load"):
        read_state_dict(other)


def test_timm_fused_mobileone_layout(tmp_path):
    src = reparameterize(_trained_like("timm:mobileone_s1"))
    path = tmp_path / "timm_mobileone_s1_deploy.pth"
    torch.save(src.state_dict(), path)
    assert detect_layout(read_state_dict(path)) == "timm-fused"
    _same_outputs(src, create_model("mobileone_s1", weights=str(path)))


def test_timm_repvgg_fused_checkpoint(tmp_path):
    src = reparameterize(_trained_like("timm:repvgg_a0"))
    path = tmp_path / "repvgg_a0_deploy.pth"
    torch.save(src.state_dict(), path)
    _same_outputs(src, create_model("timm:repvgg_a0", weights=str(path)))
