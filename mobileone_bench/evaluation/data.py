"""A local labelled image folder: the two layouts ImageNet comes in, read without downloading anything.

* **Class folders** (torchvision's ``ImageFolder``): ``DIR/<class>/<image>``, images found recursively inside each
  class folder. The class index of a folder is its ImageNet index when every folder is named by an ImageNet synset
  (``n01440764``..., the order timm's ``ImageNetInfo`` holds: so a subset of ImageNet's classes keeps the model's
  indices), the number itself when every folder is a number (``0``, ``1``, ... ``999``), and otherwise its position
  among the folder names sorted (as ``ImageFolder``).
* **The ImageNet validation layout**: the images in one folder (``ILSVRC2012_val_00000001.JPEG``...) and a label file
  beside them (``labels=``, or found in the folder by name: :data:`LABEL_FILES`): lines ``<file> <label>`` (Caffe's
  ``val.txt``; the label a 0-based index or a synset; spaces, tabs or a comma between), or Kaggle's
  ``LOC_val_solution.csv`` (``ImageId,PredictionString``; the first synset of the string is the label). The devkit's
  ``ILSVRC2012_validation_ground_truth.txt`` holds devkit IDs, which are not the models' indices without the
  devkit's ``meta.mat``: it is refused with how to convert it.

The order is deterministic: file names sorted for the validation layout (its files are already shuffled across
classes); class folders taken in turns (the first image of every class, then the second...), so that ``limit=N``
covers the classes evenly. :func:`fingerprint` hashes the names, labels and contents of the images evaluated.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from mobileone_bench.errors import UsageError

__all__ = ["IMAGE_SUFFIXES", "LABEL_FILES", "ImageSet", "open_images", "image_files", "fingerprint", "load_image",
           "imagenet_synsets"]

#: The image files read (any case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Label files found by name in a folder of images (the ImageNet validation layout).
LABEL_FILES = ("val.txt", "labels.txt", "LOC_val_solution.csv", "ILSVRC2012_validation_ground_truth.txt")
_SYNSET = re.compile(r"^n\d{8}$")
_NO_IMAGE = "no .jpg, .jpeg or .png image (nor .bmp, .webp)"


@dataclass(frozen=True)
class ImageSet:
    """The images to evaluate and their labels, in evaluation order.

    Attributes:
        root: The folder.
        layout: ``class-folders`` or ``imagenet-val``.
        files: The images, in order.
        labels: The class index of each image.
        classes: How many classes the folder names (class folders, or distinct labels).
        label_mapping: How a label became an index: ``imagenet-synsets``, ``numbers``, ``sorted-names`` (class
            folders) or ``label-file-indices`` / ``label-file-synsets``.
        label_file: The label file of the validation layout, else ``None``.
        total: How many labelled images the folder holds (before ``limit``).
    """

    root: Path
    layout: str
    files: tuple[Path, ...]
    labels: tuple[int, ...]
    classes: int
    label_mapping: str
    label_file: Path | None
    total: int

    def first(self, n: int | None) -> ImageSet:
        """The first ``n`` images (all of them for ``None``)."""
        if n is None or n >= len(self.files):
            return self
        return replace(self, files=self.files[:n], labels=self.labels[:n])

    def describe(self) -> dict[str, Any]:
        """What a record says about the folder (without the fingerprint)."""
        return {"data": str(self.root), "data_layout": self.layout, "data_classes": self.classes,
                "label_mapping": self.label_mapping,
                "label_file": None if self.label_file is None else self.label_file.name, "data_total": self.total}


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted((p for p in found if _is_image(p)), key=lambda p: p.relative_to(folder).as_posix())


def imagenet_synsets() -> dict[str, int]:
    """ImageNet-1k's synsets and their class indices (timm's ``ImageNetInfo``, shipped with timm: no download)."""
    from timm.data import ImageNetInfo

    return {name: i for i, name in enumerate(ImageNetInfo().label_names())}


def _check_folder(root: Path, what: str) -> None:
    if not root.exists():
        raise UsageError(f"{what} {root} does not exist")
    if not root.is_dir():
        raise UsageError(f"{what} must be a folder of images (a class per sub-folder, or images and a label file); "
                         f"{root} is a file")


def _class_indices(names: list[str]) -> tuple[dict[str, int], str]:
    if all(_SYNSET.match(n) for n in names):
        synsets = imagenet_synsets()
        unknown = [n for n in names if n not in synsets]
        if not unknown:
            return {n: synsets[n] for n in names}, "imagenet-synsets"
    if all(n.isdigit() for n in names):
        return {n: int(n) for n in names}, "numbers"
    return {n: i for i, n in enumerate(sorted(names))}, "sorted-names"


def _in_turns(per_class: list[list[tuple[Path, int]]]) -> list[tuple[Path, int]]:
    """The first item of every class, then the second...: the evaluation order of class folders."""
    out = []
    depth = max((len(c) for c in per_class), default=0)
    for i in range(depth):
        out += [c[i] for c in per_class if i < len(c)]
    return out


def _read_label_file(path: Path, images: list[Path]) -> tuple[list[tuple[Path, int]], str]:
    """The labelled images of the validation layout, in file-name order, and the mapping used."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"label file {path} cannot be read: {exc}") from None
    lines = [ln.strip() for ln in lines if ln.strip()]
    if path.name == "ILSVRC2012_validation_ground_truth.txt":
        raise UsageError(f"{path.name} holds the devkit's ILSVRC2012 IDs, which are not the models' class indices "
                         f"without the devkit's meta.mat: convert it to '<file> <index or synset>' lines (Caffe's "
                         f"val.txt) and pass it with --labels")
    by_name = {p.name: p for p in images}
    by_stem = {p.stem: p for p in images}
    kaggle = bool(lines) and lines[0].replace(" ", "").lower().startswith("imageid,predictionstring")
    if kaggle:
        lines = lines[1:]
    synsets: dict[str, int] | None = None
    labels: dict[Path, int] = {}
    kinds = set()
    for number, line in enumerate(lines, start=2 if kaggle else 1):
        parts = [p for p in re.split(r"[,\s]+", line) if p]
        if len(parts) < 2:
            raise UsageError(f"label file {path}, line {number}: expected '<file> <label>', got {line[:80]!r}")
        name, label = parts[0], parts[1]
        image = by_name.get(name) or by_stem.get(name) or by_name.get(Path(name).name)
        if image is None:
            raise UsageError(f"label file {path}, line {number}: {name!r} is not an image of {path.parent}")
        if label.isdigit():
            labels[image] = int(label)
            kinds.add("label-file-indices")
        elif _SYNSET.match(label):
            synsets = synsets if synsets is not None else imagenet_synsets()
            if label not in synsets:
                raise UsageError(f"label file {path}, line {number}: {label!r} is not an ImageNet-1k synset")
            labels[image] = synsets[label]
            kinds.add("label-file-synsets")
        else:
            raise UsageError(f"label file {path}, line {number}: the label {label!r} is neither a class index nor "
                             f"an ImageNet synset")
    missing = [p for p in images if p not in labels]
    if missing:
        raise UsageError(f"{len(missing)} image(s) of {path.parent} have no label in {path.name} (the first: "
                         f"{missing[0].name}); the label file and the folder must name the same images")
    return [(p, labels[p]) for p in images], " + ".join(sorted(kinds))


def open_images(folder: str | Path, *, labels: str | Path | None = None, what: str = "data folder") -> ImageSet:
    """The labelled images of a folder, in evaluation order (see the module's docstring for the layouts).

    Raises:
        UsageError: The folder is missing or a file, holds no image, mixes images with class folders, has images but
            no label file, or its label file does not match it (one line naming what is wrong).
    """
    root = Path(folder)
    _check_folder(root, what)
    try:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        loose = _images_in(root, recursive=False)
        per_class = {d.name: _images_in(d, recursive=True) for d in subdirs}
    except OSError as exc:
        raise UsageError(f"{what} {root} cannot be read: {exc.strerror or exc}") from None
    per_class = {k: v for k, v in per_class.items() if v}
    label_file = Path(labels) if labels is not None else next(
        (root / n for n in LABEL_FILES if (root / n).is_file()), None)
    if labels is not None and not Path(labels).is_file():
        raise UsageError(f"label file {labels} does not exist or is not a file")
    if per_class and loose:
        raise UsageError(f"{what} {root} holds both images ({loose[0].name}...) and class folders "
                         f"({next(iter(per_class))}/...): use one layout")
    if per_class:
        if labels is not None:
            raise UsageError(f"{what} {root} has class folders, which are its labels: --labels applies to a folder "
                             f"of images with a label file (the ImageNet validation layout)")
        index, mapping = _class_indices(list(per_class))
        ordered = _in_turns([[(p, index[name]) for p in per_class[name]] for name in sorted(per_class)])
        return ImageSet(root, "class-folders", tuple(p for p, _ in ordered), tuple(i for _, i in ordered),
                        len(per_class), mapping, None, len(ordered))
    if not loose:
        raise UsageError(f"{what} {root} holds {_NO_IMAGE}, neither in class sub-folders nor beside a label file")
    if label_file is None:
        raise UsageError(f"{what} {root} holds images but no class folders and no label file: put each class in a "
                         f"sub-folder, or pass the labels with --labels FILE ('<file> <label>' lines)")
    pairs, mapping = _read_label_file(label_file, loose)
    return ImageSet(root, "imagenet-val", tuple(p for p, _ in pairs), tuple(i for _, i in pairs),
                    len({i for _, i in pairs}), mapping, label_file, len(pairs))


def image_files(folder: str | Path, *, what: str = "calibration folder") -> list[Path]:
    """The images of a folder without labels (int8 calibration): the images in it, sorted by name, or, when it has
    class folders, the images of every class in turns (the order of :func:`open_images`).

    Raises:
        UsageError: The folder is missing, a file, or holds no image.
    """
    root = Path(folder)
    _check_folder(root, what)
    loose = _images_in(root, recursive=False)
    if loose:
        return loose
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_class = [[(p, 0) for p in _images_in(d, recursive=True)] for d in subdirs]
    files = [p for p, _ in _in_turns(per_class)]
    if not files:
        raise UsageError(f"{what} {root} holds {_NO_IMAGE}, neither in it nor in class sub-folders")
    return files


def fingerprint(images: ImageSet | Iterable[Path], labels: Iterable[int] | None = None) -> str:
    """SHA-256 over the evaluated images' relative names, labels and contents (a changed, added or relabelled image
    is a new fingerprint)."""
    if isinstance(images, ImageSet):
        root, files, labels = images.root, list(images.files), list(images.labels)
    else:
        files = list(images)
        root = files[0].parent if files else Path(".")
        labels = None if labels is None else list(labels)
    h = hashlib.sha256()
    for i, p in enumerate(files):
        try:
            name = p.relative_to(root).as_posix()
        except ValueError:
            name = p.name
        h.update(name.encode())
        h.update(b"\0" + str(labels[i] if labels is not None else "").encode() + b"\0")  # type: ignore[index]
        try:
            h.update(hashlib.sha256(p.read_bytes()).digest())
        except OSError as exc:
            raise UsageError(f"image {p} cannot be read: {exc.strerror or exc}") from None
    return h.hexdigest()


def load_image(path: Path) -> Any:
    """An image as an RGB ``PIL.Image``.

    Raises:
        UsageError: The file is not an image Pillow can decode (one line naming it).
    """
    from PIL import Image

    from mobileone_bench.errors import one_line

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - a broken file is one line naming it
        raise UsageError(f"image {path} cannot be read: {one_line(exc, limit=200, typed=False)}") from None
