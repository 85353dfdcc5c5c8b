"""evaluation/: the two folder layouts and their one-line errors, the order and ``limit``, the fingerprint, the
preprocessing (timm's data config for a timm model, the paper's crop otherwise), and the metrics against references
computed here (scipy's Wilson interval, top-k counted by hand)."""

from __future__ import annotations

import random

import pytest

from mobileone_bench.errors import UsageError
from mobileone_bench.evaluation.data import fingerprint, image_files, open_images


def _png(path, colour=(10, 20, 30), size=(12, 10)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format="PNG")
    return path


def _class_folders(root, classes, per_class):
    for c in classes:
        for i in range(per_class[c] if isinstance(per_class, dict) else per_class):
            _png(root / c / f"img{i}.png", (i, 0, 0))
    return root


# ------------------------------------------------------------------------------------------------ layouts


def test_class_folders_numbers_are_their_index_and_are_taken_in_turns(tmp_path):
    root = _class_folders(tmp_path / "d", ["0", "2", "10"], {"0": 3, "2": 1, "10": 2})
    images = open_images(root)
    assert images.layout == "class-folders" and images.label_mapping == "numbers" and images.classes == 3
    # folders by name (0, 10, 2), the first image of each, then the second...
    assert [(p.parent.name, p.name) for p in images.files] == [
        ("0", "img0.png"), ("10", "img0.png"), ("2", "img0.png"), ("0", "img1.png"), ("10", "img1.png"),
        ("0", "img2.png")]
    assert list(images.labels) == [0, 10, 2, 0, 10, 0]
    first = images.first(3)
    assert list(first.labels) == [0, 10, 2] and first.total == 6
    assert images.first(None) is images and images.first(100) is images


def test_class_folders_named_by_synset_keep_imagenet_s_indices(tmp_path):
    from timm.data import ImageNetInfo

    names = ImageNetInfo().label_names()
    root = _class_folders(tmp_path / "d", [names[7], names[900]], 1)
    images = open_images(root)
    assert images.label_mapping == "imagenet-synsets" and sorted(images.labels) == [7, 900]


def test_other_class_folder_names_are_indexed_in_sorted_order(tmp_path):
    root = _class_folders(tmp_path / "d", ["zebra", "cat", "dog"], 1)
    images = open_images(root)
    assert images.label_mapping == "sorted-names"
    assert {p.parent.name: label for p, label in zip(images.files, images.labels)} == {"cat": 0, "dog": 1, "zebra": 2}


def test_the_imagenet_validation_layout_with_its_label_files(tmp_path):
    from timm.data import ImageNetInfo

    synset = ImageNetInfo().label_names()[3]
    root = tmp_path / "val"
    for i in (2, 1, 3):
        _png(root / f"ILSVRC2012_val_0000000{i}.JPEG")
    (root / "val.txt").write_text("ILSVRC2012_val_00000001.JPEG 65\nILSVRC2012_val_00000002.JPEG 0\n"
                                  f"ILSVRC2012_val_00000003.JPEG {synset}\n")
    images = open_images(root)
    assert images.layout == "imagenet-val" and images.label_file.name == "val.txt"
    assert [p.name[-7:] for p in images.files] == ["01.JPEG", "02.JPEG", "03.JPEG"]
    assert list(images.labels) == [65, 0, 3]
    assert images.label_mapping == "label-file-indices + label-file-synsets"
    (root / "val.txt").unlink()
    kaggle = tmp_path / "LOC_val_solution.csv"  # given with --labels; image ids without their extension
    kaggle.write_text("ImageId,PredictionString\n" + "\n".join(
        f"ILSVRC2012_val_0000000{i},{synset} 1 2 3 4 {synset} 5 6 7 8" for i in (3, 1, 2)) + "\n")
    assert list(open_images(root, labels=kaggle).labels) == [3, 3, 3]


@pytest.mark.parametrize("make, fragment", [
    (lambda root: None, "does not exist"),
    (lambda root: root.write_text("x"), "is a file"),
    (lambda root: root.mkdir(), "holds no .jpg, .jpeg or .png image"),
    (lambda root: (root / "empty_class").mkdir(parents=True), "holds no .jpg"),
    (lambda root: (_png(root / "a.png"), _png(root / "cls" / "b.png")), "holds both images"),
    (lambda root: _png(root / "a.png"), "no class folders and no label file"),
    (lambda root: (_png(root / "a.png"), _png(root / "b.png"), (root / "val.txt").write_text("a.png 1\n")),
     "1 image(s) of"),
    (lambda root: (_png(root / "a.png"), (root / "val.txt").write_text("a.png 1\nz.png 2\n")),
     "'z.png' is not an image of"),
    (lambda root: (_png(root / "a.png"), (root / "val.txt").write_text("a.png cat\n")),
     "neither a class index nor an ImageNet synset"),
    (lambda root: (_png(root / "a.png"), (root / "val.txt").write_text("a.png\n")), "expected '<file> <label>'"),
    (lambda root: (_png(root / "a.png"), (root / "ILSVRC2012_validation_ground_truth.txt").write_text("490\n")),
     "devkit's ILSVRC2012 IDs"),
])
def test_a_malformed_folder_is_one_line(tmp_path, make, fragment):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(UsageError) as info:
        open_images(root)
    text = str(info.value)
    assert "\n" not in text and fragment in text, text


def test_labels_apply_to_the_validation_layout_only(tmp_path):
    root = _class_folders(tmp_path / "d", ["0"], 1)
    (tmp_path / "val.txt").write_text("img0.png 0\n")
    with pytest.raises(UsageError, match="class folders, which are its labels"):
        open_images(root, labels=tmp_path / "val.txt")
    with pytest.raises(UsageError, match="label file .* does not exist"):
        open_images(root, labels=tmp_path / "nope.txt")


def test_the_fingerprint_follows_names_labels_and_contents(tmp_path):
    root = _class_folders(tmp_path / "d", ["0", "1"], 2)
    first = fingerprint(open_images(root))
    assert first == fingerprint(open_images(root)) and len(first) == 64
    assert fingerprint(open_images(root).first(3)) != first
    _png(root / "1" / "img1.png", (99, 99, 99))  # same name, new pixels
    second = fingerprint(open_images(root))
    assert second != first
    (root / "1" / "img1.png").rename(root / "0" / "img9.png")  # relabelled
    assert fingerprint(open_images(root)) not in (first, second)


def test_calibration_images_flat_or_in_class_folders(tmp_path):
    flat = tmp_path / "flat"
    for name in ("b.png", "a.jpg", "c.txt"):
        (_png(flat / name) if name.endswith("png") else (flat / name).write_text("x"))
    _png(flat / "a.jpg")
    assert [p.name for p in image_files(flat)] == ["a.jpg", "b.png"]
    nested = _class_folders(tmp_path / "nested", ["x", "y"], 2)
    assert [f"{p.parent.name}/{p.name}" for p in image_files(nested)] == ["x/img0.png", "y/img0.png", "x/img1.png",
                                                                         "y/img1.png"]


# ------------------------------------------------------------------------------------------------ preprocessing


def test_preprocessing_is_timm_s_data_config_for_a_timm_model_and_the_paper_s_crop_otherwise():
    import timm
    import torch
    from PIL import Image
    from timm.data import resolve_data_config

    from mobileone_bench.evaluation.preprocess import for_model

    timm_model = timm.create_model("resnet10t", pretrained=False)
    config = resolve_data_config({}, model=timm_model)
    pre = for_model(timm_model, (1, 3, 64, 48))
    assert pre.source == "timm data config" and pre.settings["crop_pct"] == pytest.approx(config["crop_pct"])
    assert pre.settings["mean"] == pytest.approx(list(config["mean"])) and pre.settings["input_size"] == [64, 48]
    assert tuple(pre(Image.new("RGB", (100, 80))).shape) == (3, 64, 48)
    paper = for_model(torch.nn.Conv2d(3, 3, 1), (1, 3, 32, 32))
    assert paper.source == "paper" and paper.settings["resize"] == round(32 / 0.875)
    assert "center crop 32x32" in paper.text
    mean = tuple(round(255 * m) for m in (0.485, 0.456, 0.406))
    assert paper(Image.new("RGB", (50, 40), mean)).abs().max() < 0.02  # ImageNet's mean colour is 0


# ------------------------------------------------------------------------------------------------ metrics


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (912, 1000), (1, 1)])
def test_wilson_interval_matches_scipy(k, n):
    from scipy.stats import binomtest

    from mobileone_bench.evaluation.metrics import wilson_interval

    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(ref.low, abs=1e-9) and high == pytest.approx(ref.high, abs=1e-9)
    assert wilson_interval(0, 0) == (None, None)


def test_tally_counts_top1_top5_and_agreement_against_a_count_by_hand():
    import torch

    from mobileone_bench.evaluation.metrics import Tally

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 10, generator=gen)
    rnd = random.Random(0)
    labels = [rnd.randrange(10) for _ in range(40)]
    reference = [int(row.argmax()) if i % 4 else (int(row.argmax()) + 1) % 10 for i, row in enumerate(logits)]
    tally = Tally()
    tally.add(logits[:25], labels[:25], reference[:25])
    tally.add(logits[25:], labels[25:], reference[25:])
    ranked = [sorted(range(10), key=lambda c: -float(row[c])) for row in logits]
    top1 = sum(r[0] == y for r, y in zip(ranked, labels))
    top5 = sum(y in r[:5] for r, y in zip(ranked, labels))
    out = tally.summary()
    assert (out["n"], out["correct_top1"], out["correct_top5"]) == (40, top1, top5)
    assert out["top1"] == pytest.approx(100 * top1 / 40) and out["top5"] == pytest.approx(100 * top5 / 40)
    assert out["agreement"] == pytest.approx(75.0) and out["agreement_n"] == 40
    assert out["top1_ci_low"] < out["top1"] < out["top1_ci_high"] and out["interval"].startswith("Wilson")
    with pytest.raises(ValueError, match="outside the model's 10 classes"):
        tally.add(logits[:1], [10])
