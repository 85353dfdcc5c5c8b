"""The model's own evaluation preprocessing, at the artifact's fixed input size.

A timm model (one built by timm: it carries ``pretrained_cfg``) is evaluated with timm's data config,
``timm.data.resolve_data_config({}, model=model)`` (its interpolation, ``crop_pct``, crop mode, mean and std), and
``timm.data.create_transform(**config, is_training=False)``; every other model with the paper's protocol: the
shorter side resized to ``size / 0.875`` (bilinear), a center crop, ImageNet's mean and std. The input size is always
the one the model is exported and measured at (its registry default, or ``--input-size``), so an artifact with a
fixed input shape takes what the transform gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "PAPER_CROP_PCT", "Preprocessing", "for_model", "paper_transform"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The paper's evaluation crop: 224 of 256 (0.875).
PAPER_CROP_PCT = 0.875


@dataclass(frozen=True)
class Preprocessing:
    """A transform from an RGB ``PIL.Image`` to a normalised ``(3, H, W)`` float tensor, and what it does.

    Attributes:
        transform: The callable.
        source: ``timm data config`` or ``paper``.
        settings: Input size, interpolation, crop percentage and mode, mean, std (plain values, for the record).
        text: One line for people (the manifest of an int8 artifact calibrated on images).
    """

    transform: Callable[[Any], Any]
    source: str
    settings: dict[str, Any]
    text: str

    def __call__(self, image: Any) -> Any:
        return self.transform(image)

    def describe(self) -> dict[str, Any]:
        """The record's ``preprocessing`` field."""
        return {"source": self.source, **self.settings}


def paper_transform(size: tuple[int, int]) -> Preprocessing:
    """The paper's evaluation transform at ``(H, W)``: resize the shorter side to ``max(H, W) / 0.875``, center
    crop, scale to [0, 1], ImageNet normalisation."""
    from torchvision import transforms

    short = int(round(max(size) / PAPER_CROP_PCT))
    transform = transforms.Compose([
        transforms.Resize(short, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(tuple(size)),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    text = (f"RGB; shorter side resized to {short} (bilinear, {max(size)}/{PAPER_CROP_PCT}); center crop "
            f"{size[0]}x{size[1]}; scaled to [0, 1]; ImageNet normalisation mean {list(IMAGENET_MEAN)}, std "
            f"{list(IMAGENET_STD)}")
    settings = {"input_size": [int(size[0]), int(size[1])], "interpolation": "bilinear", "crop_pct": PAPER_CROP_PCT,
                "crop_mode": "center", "resize": short, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    return Preprocessing(transform, "paper", settings, text)


def _timm_transform(model: Any, size: tuple[int, int]) -> Preprocessing:
    from timm.data import create_transform, resolve_data_config

    config = resolve_data_config({}, model=model)
    config["input_size"] = (3, int(size[0]), int(size[1]))  # the artifact's fixed input shape
    transform = create_transform(**config, is_training=False)
    settings = {"input_size": [int(size[0]), int(size[1])], "interpolation": str(config.get("interpolation")),
                "crop_pct": float(config.get("crop_pct") or PAPER_CROP_PCT),
                "crop_mode": str(config.get("crop_mode") or "center"),
                "mean": [float(v) for v in config["mean"]], "std": [float(v) for v in config["std"]]}
    text = (f"timm data config: input {size[0]}x{size[1]}, {settings['interpolation']} interpolation, crop_pct "
            f"{settings['crop_pct']}, crop mode {settings['crop_mode']}, mean {settings['mean']}, std "
            f"{settings['std']}")
    return Preprocessing(transform, "timm data config", settings, text)


def for_model(model: Any, input_shape: tuple[int, ...]) -> Preprocessing:
    """The evaluation preprocessing of ``model`` (its train-time form carries timm's ``pretrained_cfg`` if timm
    built it) at the spatial size of ``input_shape`` (NCHW)."""
    size = (int(input_shape[-2]), int(input_shape[-1]))
    if getattr(model, "pretrained_cfg", None):
        return _timm_transform(model, size)
    return paper_transform(size)
