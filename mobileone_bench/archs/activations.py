"""The dynamic activations, one home for every model that uses them.

* :class:`DynamicReLU` (Chen et al., "Dynamic ReLU", ECCV 2020), ``y_c = max_k(a_c^k(x) x_c + b_c^k(x))``:
  DY-ReLU-A shares the coefficients across space and channels, DY-ReLU-B across space only. Its coefficients
  come from its own :class:`HyperFunction`, or from outside (Mobile-Former computes them from a global token).
* :class:`DynamicShiftMax` (MicroNet, Li et al., ICCV 2021), ``y_i = max_k sum_j a_{i,j}^k(x) x_{(i + j C/G) mod C}``.

Both start from ReLU: with a neutral hyper-function output (0) they compute ``max(x, 0)``. They are used by the
30-layer network of the paper's Section 3.2 (:mod:`mobileone_bench.archs.ablation`, Table 2) and by the model
families that are built on them.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["HyperFunction", "DynamicReLU", "DynamicShiftMax"]


class HyperFunction(nn.Module):
    """The coefficient network of the dynamic activations, shaped like Squeeze-Excite.

    ``theta(x) = 2 sigmoid(FC2(ReLU(FC1(GAP(x))))) - 1``, one row of ``outputs`` values in ``(-1, 1)`` per sample.

    Args:
        channels: Input channels ``C``.
        outputs: Number of coefficients produced per sample.
        reduction: ``R``: the hidden layer has ``C / R`` units (at least 1).
    """

    def __init__(self, channels: int, outputs: int, reduction: int = 4):
        super().__init__()
        self.fc1 = nn.Linear(channels, max(1, channels // reduction))
        self.fc2 = nn.Linear(max(1, channels // reduction), outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3))
        return 2.0 * torch.sigmoid(self.fc2(torch.relu(self.fc1(s)))) - 1.0


class DynamicReLU(nn.Module):
    """Dynamic ReLU (Chen et al., "Dynamic ReLU", ECCV 2020): ``y_c = max_k (a_c^k(x) x_c + b_c^k(x))``.

    The hyper-function output ``theta = [Δa^1..Δa^K, Δb^1..Δb^K]`` (each ``C`` values for DY-ReLU-B, 1 for
    DY-ReLU-A) gives ``a^k = alpha^k + lambda_a Δa^k`` and ``b^k = beta^k + lambda_b Δb^k`` with the paper's
    ``alpha^1 = 1``, ``alpha^k = 0`` for ``k > 1`` and ``beta^k = 0``, so that a neutral ``theta`` is ReLU.
    Every tensor stays 4-D (coefficients as ``(N, K n, 1, 1)``), which Core ML and the Neural Engine prefer.

    Args:
        channels: Input channels ``C``.
        channel_wise: ``True`` for DY-ReLU-B (coefficients per channel, shared across space, ``2KC`` outputs);
            ``False`` for DY-ReLU-A (shared across space and channels, ``2K`` outputs).
        pieces: ``K``, the number of linear pieces.
        reduction: ``R`` of the hyper-function.
        lambda_a: Range of the slope residuals.
        lambda_b: Range of the intercept residuals.
        own_hyper: ``False``: the module has no hyper-function; the caller passes ``theta`` (``(N, 2 K n)``, in
            ``(-1, 1)``) to :meth:`forward`, as Mobile-Former does from its global tokens.
    """

    def __init__(self, channels: int, channel_wise: bool = True, pieces: int = 2, reduction: int = 4,
                 lambda_a: float = 1.0, lambda_b: float = 0.5, own_hyper: bool = True):
        super().__init__()
        self.channels, self.pieces = channels, pieces
        self.channel_wise = channel_wise
        self.coef_channels = channels if channel_wise else 1
        self.lambda_a, self.lambda_b = lambda_a, lambda_b
        self.theta_size = 2 * pieces * self.coef_channels
        self.hyper = HyperFunction(channels, self.theta_size, reduction) if own_hyper else None
        alpha = torch.zeros(1, pieces * self.coef_channels, 1, 1)
        alpha[:, : self.coef_channels] = 1.0  # alpha^1 = 1, alpha^k = 0 for k > 1
        self.register_buffer("alpha", alpha, persistent=False)
        self.register_buffer("beta", torch.zeros(1, pieces * self.coef_channels, 1, 1), persistent=False)

    def coefficients(self, x: torch.Tensor, theta: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Slopes ``a`` and intercepts ``b``, each ``(N, K n, 1, 1)``.

        Piece ``k`` (0-based) is channels ``k n .. (k + 1) n - 1``, with ``n = C`` (DY-ReLU-B) or 1 (DY-ReLU-A).
        ``theta`` (``(N, 2 K n)``) replaces the module's own hyper-function output when given.
        """
        kn = self.pieces * self.coef_channels
        if theta is None:
            if self.hyper is None:
                raise ValueError("this DynamicReLU has no hyper-function: pass theta")
            theta = self.hyper(x)
        theta = theta.reshape(-1, 2 * kn, 1, 1)
        return self.alpha + self.lambda_a * theta[:, :kn], self.beta + self.lambda_b * theta[:, kn:]

    def forward(self, x: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        a, b = self.coefficients(x, theta)
        n = self.coef_channels
        out = a[:, :n] * x + b[:, :n]
        for k in range(1, self.pieces):
            out = torch.maximum(out, a[:, k * n:(k + 1) * n] * x + b[:, k * n:(k + 1) * n])
        return out

    def extra_repr(self) -> str:
        return f"{self.channels}, {'B' if self.channel_wise else 'A'}, K={self.pieces}"


class DynamicShiftMax(nn.Module):
    """Dynamic Shift-Max (MicroNet, Li et al., ICCV 2021).

    ``y_i = max_{k<K} sum_{j<J} a_{i,j}^k(x) x_{(i + j C/G) mod C}``: each output channel takes the max over ``K``
    dynamic mixtures of itself and of the channels one, two... whole groups further on (a circular channel shift by
    ``C/G``). The ``K J C`` coefficients are ``a_{i,j}^k = alpha_j^k + lambda_a theta_{i,j}^k`` with the
    hyper-function output ``theta`` in ``(-1, 1)``, ``alpha_0^1 = 1`` and every other ``alpha = 0``, so that a
    neutral ``theta`` is ReLU (``max(x_i, 0)``). The shift is a concatenation of two channel slices (Slice + Concat
    in ONNX, slice_by_index + concat in Core ML); every tensor stays 4-D.

    Args:
        channels: Input channels ``C`` (divisible by ``groups``).
        groups: ``G``; the shift step is ``C / G`` channels.
        shifts: ``J``, number of shifted copies mixed (the unshifted input included).
        pieces: ``K``, number of mixtures maxed over.
        reduction: ``R`` of the hyper-function.
        lambda_a: Range of the coefficient residuals.
    """

    def __init__(self, channels: int, groups: int = 4, shifts: int = 2, pieces: int = 2, reduction: int = 4,
                 lambda_a: float = 1.0):
        super().__init__()
        if channels % groups:
            raise ValueError(f"Dynamic Shift-Max needs channels ({channels}) divisible by groups ({groups})")
        self.channels, self.groups, self.shifts, self.pieces = channels, groups, shifts, pieces
        self.lambda_a = lambda_a
        self.hyper = HyperFunction(channels, pieces * shifts * channels, reduction)
        alpha = torch.zeros(1, pieces * shifts * channels, 1, 1)
        alpha[:, :channels] = 1.0  # alpha_0^1 = 1: the unshifted input in the first mixture
        self.register_buffer("alpha", alpha, persistent=False)

    def shift(self, x: torch.Tensor, j: int) -> torch.Tensor:
        """Channel ``i`` of the result is channel ``(i + j C/G) mod C`` of ``x``."""
        m = (j * (self.channels // self.groups)) % self.channels
        return x if m == 0 else torch.cat([x[:, m:], x[:, :m]], dim=1)

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """The coefficients ``a``, ``(N, K J C, 1, 1)``: ``a_{i,j}^k`` is channel ``(k J + j) C + i`` (0-based)."""
        theta = self.hyper(x).reshape(-1, self.pieces * self.shifts * self.channels, 1, 1)
        return self.alpha + self.lambda_a * theta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.coefficients(x)
        c = self.channels
        shifted = [self.shift(x, j) for j in range(self.shifts)]

        def mixture(k: int) -> torch.Tensor:
            z = a[:, k * self.shifts * c:(k * self.shifts + 1) * c] * shifted[0]
            for j in range(1, self.shifts):
                i = k * self.shifts + j
                z = z + a[:, i * c:(i + 1) * c] * shifted[j]
            return z

        out = mixture(0)
        for k in range(1, self.pieces):
            out = torch.maximum(out, mixture(k))
        return out

    def extra_repr(self) -> str:
        return f"{self.channels}, G={self.groups}, J={self.shifts}, K={self.pieces}"
