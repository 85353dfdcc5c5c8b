"""The dynamic activations, one home for every model that uses them.

* :class:`DynamicReLU` (Chen et al., "Dynamic ReLU", ECCV 2020), ``y_c = max_k(a_c^k(x) x_c + b_c^k(x))``:
  DY-ReLU-A shares the coefficients across space and channels, DY-ReLU-B across space only. Its coefficients
  come from its own :class:`HyperFunction`, or from outside (Mobile-Former computes them from a global token).
* :class:`DynamicShiftMax` (MicroNet, Li et al., ICCV 2021), ``y_i = max_k sum_j a_{i,j}^k(x) x_{s_j(i)}``: by
  default ``s_j(i) = (i + j C/G) mod C`` (a circular shift by whole groups).
* :class:`MicroNetShiftMax`: Dynamic Shift-Max exactly as the MicroNet authors' released code computes it (and under
  its key names): the shifted copy moves by one group *and* by one channel inside the group, the hyper-function ends
  in a hard sigmoid, the coefficients lie in ``[-2, 2]`` around per-piece initial values, and ``K`` is 2 or 1.

With their default arguments :class:`DynamicReLU` and :class:`DynamicShiftMax` start from ReLU: with a neutral
hyper-function output (0) they compute ``max(x, 0)``; :class:`MicroNetShiftMax` starts from the authors' initial
coefficients (for MicroNet's defaults, the identity). They are used by the 30-layer network of the paper's Section 3.2
(:mod:`mobileone_bench.models.archs.ablation`, Table 2) and by the model families that are built on them
(:mod:`mobileone_bench.models.archs.micronet`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mobileone_bench.models.archs._layers import make_divisible

__all__ = ["HyperFunction", "DynamicReLU", "DynamicShiftMax", "MicroNetShiftMax", "shift_permutation"]


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

    def elementwise_macs(self, x: torch.Tensor) -> int:
        """Per-element work: one multiply-add ``a x + b`` per element and piece (counted by :mod:`complexity`)."""
        return self.pieces * x.numel()

    def extra_repr(self) -> str:
        return f"{self.channels}, {'B' if self.channel_wise else 'A'}, K={self.pieces}"


def shift_permutation(channels: int, groups: int, j: int, inner_shift: int = 0) -> list[int]:
    """Source channel of every output channel of the ``j``-th shifted copy in Dynamic Shift-Max.

    Channel ``i = p C/G + q`` (group ``p``, position ``q`` inside the group) takes channel
    ``((p + j) mod G) C/G + (q + j inner_shift) mod (C/G)``: ``j`` whole groups further on and, with ``inner_shift``,
    ``j inner_shift`` channels further inside the group. ``inner_shift = 0`` is the plain circular shift
    ``(i + j C/G) mod C``.
    """
    if channels % groups:
        raise ValueError(f"Dynamic Shift-Max needs channels ({channels}) divisible by groups ({groups})")
    per_group = channels // groups
    return [((i // per_group + j) % groups) * per_group + (i % per_group + j * inner_shift) % per_group
            for i in range(channels)]


class DynamicShiftMax(nn.Module):
    """Dynamic Shift-Max (MicroNet, Li et al., ICCV 2021).

    ``y_i = max_{k<K} sum_{j<J} a_{i,j}^k(x) x_{s_j(i)}``: each output channel takes the max over ``K`` dynamic
    mixtures of itself and of ``J - 1`` shifted copies. With the default ``inner_shift = 0``,
    ``s_j(i) = (i + j C/G) mod C``, the channels one, two... whole groups further on (a circular channel shift by
    ``C/G``); with ``inner_shift = 1`` the copy also moves one channel further inside its group (the form of the
    MicroNet authors' code, see :func:`shift_permutation`). The ``K J C`` coefficients are
    ``a_{i,j}^k = alpha_j^k + lambda_a theta_{i,j}^k`` with the hyper-function output ``theta`` in ``(-1, 1)``. By
    default ``alpha_0^1 = 1`` and every other ``alpha = 0``, so that a neutral ``theta`` is ReLU (``max(x_i, 0)``);
    ``init`` sets other initial values. The plain shift is a concatenation of two channel slices (Slice + Concat in
    ONNX, slice_by_index + concat in Core ML), the one with an inner shift a constant channel gather (Gather,
    gather); every tensor stays 4-D.

    Args:
        channels: Input channels ``C`` (divisible by ``groups``).
        groups: ``G``; the shift step is ``C / G`` channels.
        shifts: ``J``, number of shifted copies mixed (the unshifted input included).
        pieces: ``K``, number of mixtures maxed over.
        reduction: ``R`` of the hyper-function.
        lambda_a: Range of the coefficient residuals.
        inner_shift: Channels the ``j``-th copy moves inside its group, per ``j`` (0: whole-group shift only).
        init: ``alpha``, ``K`` rows of ``J`` values (``init[k][j] = alpha_j^k``, 0-based); ``None`` for the ReLU
            start above.
        own_hyper: ``False``: no :class:`HyperFunction`; ``theta`` (``(N, K J C)``) is passed to :meth:`forward`.
    """

    def __init__(self, channels: int, groups: int = 4, shifts: int = 2, pieces: int = 2, reduction: int = 4,
                 lambda_a: float = 1.0, *, inner_shift: int = 0, init: Sequence[Sequence[float]] | None = None,
                 own_hyper: bool = True):
        super().__init__()
        if channels % groups:
            raise ValueError(f"Dynamic Shift-Max needs channels ({channels}) divisible by groups ({groups})")
        self.channels, self.groups, self.shifts, self.pieces = channels, groups, shifts, pieces
        self.lambda_a, self.inner_shift = lambda_a, inner_shift
        self.hyper = HyperFunction(channels, pieces * shifts * channels, reduction) if own_hyper else None
        alpha = torch.zeros(1, pieces * shifts * channels, 1, 1)
        if init is None:
            alpha[:, :channels] = 1.0  # alpha_0^1 = 1: the unshifted input in the first mixture
        else:
            if len(init) != pieces or any(len(row) != shifts for row in init):
                raise ValueError(f"init needs {pieces} rows of {shifts} values, got {init!r}")
            for k, row in enumerate(init):
                for j, value in enumerate(row):
                    alpha[:, (k * shifts + j) * channels:(k * shifts + j + 1) * channels] = float(value)
        self.register_buffer("alpha", alpha, persistent=False)
        if inner_shift:
            index = torch.tensor([shift_permutation(channels, groups, j, inner_shift) for j in range(shifts)])
            self.register_buffer("shift_index", index, persistent=False)
        else:
            self.shift_index = None

    def shift(self, x: torch.Tensor, j: int) -> torch.Tensor:
        """The ``j``-th shifted copy: channel ``i`` of the result is channel ``s_j(i)`` of ``x``."""
        if self.shift_index is not None:
            return x if j == 0 else x.index_select(1, self.shift_index[j])
        m = (j * (self.channels // self.groups)) % self.channels
        return x if m == 0 else torch.cat([x[:, m:], x[:, :m]], dim=1)

    def coefficients(self, x: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        """The coefficients ``a``, ``(N, K J C, 1, 1)``: ``a_{i,j}^k`` is channel ``(k J + j) C + i`` (0-based).

        ``theta`` (``(N, K J C)``, in ``(-1, 1)``) replaces the module's own hyper-function output when given.
        """
        if theta is None:
            if self.hyper is None:
                raise ValueError("this DynamicShiftMax has no hyper-function: pass theta")
            theta = self.hyper(x)
        theta = theta.reshape(-1, self.pieces * self.shifts * self.channels, 1, 1)
        return self.alpha + self.lambda_a * theta

    def forward(self, x: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        a = self.coefficients(x, theta)
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

    def elementwise_macs(self, x: torch.Tensor) -> int:
        """Per-element work: ``J`` multiply(-add)s per element for each of the ``K`` mixtures (counted by
        :mod:`complexity`)."""
        return self.pieces * self.shifts * x.numel()

    def extra_repr(self) -> str:
        inner = f", inner_shift={self.inner_shift}" if self.inner_shift else ""
        return f"{self.channels}, G={self.groups}, J={self.shifts}, K={self.pieces}{inner}"


class MicroNetShiftMax(DynamicShiftMax):
    """Dynamic Shift-Max as the MicroNet authors' code computes it (their ``DYShiftMax``), under its key names.

    ``J = 2`` (the input and one shifted copy) and ``K = 2`` or 1 pieces:
    ``y_i = max_k (a_{i,0}^k x_i + a_{i,1}^k x_{s(i)})``, where ``s(i)`` is channel ``i`` moved one group *and* one
    channel inside its group further on (``inner_shift = 1`` of :class:`DynamicShiftMax`). The hyper-function is
    ``fc = Sequential(Linear(C, S), ReLU, Linear(S, 2 K C), Hardsigmoid)`` on the global average of ``x``, with
    ``S = max(4, make_divisible(C / R, 4))``; the coefficients are ``a_{i,j}^k = init[k][j] + 2 theta_{i,j}^k`` with
    ``theta = 2 fc(GAP(x)) - 1`` in ``[-1, 1]``, i.e. ``init + 4 (h_sigmoid - 1/2)``, in ``init + [-2, 2]``
    (the authors' ``ACT_MAX = 2``). Coefficient order ``[a^1_0, a^1_1, a^2_0, a^2_1]`` is the authors'
    ``[a1, b1, a2, b2]``.

    Args:
        channels: Input (and output) channels ``C``.
        groups: Number of channel groups ``G`` of the shift (divides ``C``).
        pieces: ``K``: 2 (the authors' ``act_relu``, a max of two mixtures) or 1 (one mixture, no max).
        init: ``K`` rows of the two initial coefficients ``(a_0, a_1)``: the authors' ``(init_a[k], init_b[k])``;
            by default ``(1, 0)`` for every piece (the input itself, which is the identity, not ReLU).
        reduction: ``R`` of the hyper-function.
    """

    def __init__(self, channels: int, groups: int, pieces: int = 2, init: Sequence[Sequence[float]] | None = None,
                 reduction: int = 8):
        if init is None:
            init = ((1.0, 0.0),) * pieces
        super().__init__(channels, groups, shifts=2, pieces=pieces, lambda_a=2.0, inner_shift=1, init=init,
                         own_hyper=False)
        self.squeeze = max(4, make_divisible(channels // reduction, 4))
        self.fc = nn.Sequential(nn.Linear(channels, self.squeeze), nn.ReLU(),
                                nn.Linear(self.squeeze, pieces * 2 * channels), nn.Hardsigmoid())

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """The hyper-function output ``2 fc(GAP(x)) - 1``, ``(N, 2 K C)``, in ``[-1, 1]``."""
        return 2.0 * self.fc(x.mean(dim=(2, 3))) - 1.0

    def forward(self, x: torch.Tensor, theta: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(x, self.theta(x) if theta is None else theta)
