"""Top-1 and top-5 accuracy, their 95% intervals, and the agreement of an artifact's predictions with PyTorch's.

The interval is **Wilson's score interval** for a binomial proportion (each image is right or wrong): unlike the
normal approximation it stays inside [0, 1] and keeps close to its nominal coverage at small ``n`` and at
accuracies near 0 or 1, which is where a ``--limit`` run or an almost-perfect artifact sits. Percentages are in %,
as the paper's top-1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["Z95", "INTERVAL", "wilson_interval", "topk_hits", "Tally"]

#: The two-sided 95% normal quantile.
Z95 = 1.959963984540054
#: What a record's ``*_ci_low`` / ``*_ci_high`` are.
INTERVAL = "Wilson score interval, 95%"


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson's score interval of ``successes`` out of ``n``, as fractions; ``(None, None)`` for ``n == 0``."""
    if n <= 0:
        return None, None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def topk_hits(logits: Any, labels: Sequence[int], ks: Sequence[int] = (1, 5)) -> dict[int, list[bool]]:
    """Per image, whether its label is among the ``k`` highest logits, for each ``k`` (``k`` above the number of
    classes counts every class). ``logits``: an ``(N, C)`` tensor or array."""
    import torch

    scores = torch.as_tensor(logits).float().reshape(len(labels), -1)
    target = torch.as_tensor(list(labels)).reshape(-1, 1)
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices
    return {k: (top[:, :k] == target).any(dim=1).tolist() for k in ks}


@dataclass
class Tally:
    """Counts accumulated image by image: right at top-1 and top-5, and the same top-1 class as PyTorch's.

    Args:
        num_classes: The model's output size (a label outside it is a :class:`ValueError`).
    """

    num_classes: int | None = None
    n: int = 0
    top1: int = 0
    top5: int = 0
    compared: int = 0
    agreed: int = 0
    predictions: list[int] = field(default_factory=list)

    def add(self, logits: Any, labels: Sequence[int], reference: Sequence[int] | None = None) -> list[int]:
        """Count a batch; ``reference``: PyTorch's top-1 class of each image (for the agreement). Returns this
        batch's top-1 classes."""
        import torch

        scores = torch.as_tensor(logits).float().reshape(len(labels), -1)
        classes = scores.shape[1]
        if self.num_classes is None:
            self.num_classes = classes
        bad = [int(v) for v in labels if not 0 <= int(v) < classes]
        if bad:
            raise ValueError(f"label {bad[0]} is outside the model's {classes} classes")
        hits = topk_hits(scores, labels)
        self.n += len(labels)
        self.top1 += sum(hits[1])
        self.top5 += sum(hits[5])
        predicted = scores.argmax(dim=1).tolist()
        self.predictions += predicted
        if reference is not None:
            self.compared += len(predicted)
            self.agreed += sum(int(a == b) for a, b in zip(predicted, reference))
        return predicted

    def summary(self) -> dict[str, Any]:
        """The record's accuracy fields, in %: ``top1``, ``top5`` and their interval bounds, ``agreement`` (with
        PyTorch's top-1, ``None`` when not compared) and its interval, the counts and ``interval`` (what the
        bounds are)."""
        out: dict[str, Any] = {"n": self.n, "correct_top1": self.top1, "correct_top5": self.top5}
        for name, hits, n in (("top1", self.top1, self.n), ("top5", self.top5, self.n),
                              ("agreement", self.agreed, self.compared)):
            low, high = wilson_interval(hits, n)
            out[name] = None if n == 0 else round(100.0 * hits / n, 4)
            out[f"{name}_ci_low"] = None if low is None else round(100.0 * low, 4)
            out[f"{name}_ci_high"] = None if high is None else round(100.0 * high, 4)
        out["agreement_n"] = self.compared
        out["interval"] = INTERVAL
        return out
