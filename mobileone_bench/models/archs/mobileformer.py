"""Mobile-Former (Chen et al., "Mobile-Former: Bridging MobileNet and Transformer", CVPR 2022): 52M and 96M.

Mobile-Former runs a MobileNet ("Mobile", on the image) and a tiny Transformer ("Former", on a few learned global
tokens) in parallel, joined by a two-way bridge of light-weight cross attention. Each Mobile-Former block is

1. **Mobile -> Former** (:class:`MobileToFormer`): the tokens attend over the block's input feature map, whose
   pixels are keys *and* values without any projection (only the token side has a query projection and an output
   projection); 2 heads split the channels; residual, then LayerNorm (post-norm).
2. **Former** (:class:`Former`): multi-head self-attention over the tokens (query projection only, keys = values =
   the tokens, an output projection), then an FFN with expansion 2 and GELU; post-norm after each.
3. **Mobile** (the block's convolutions): an inverted bottleneck whose activations are dynamic ReLUs
   (:class:`TokenDynamicReLU`) with coefficients computed from the *first* updated token by a two-layer MLP
   (:class:`TokenHyperFunction`): ``y_c = max(a^1_c x_c, a^2_c x_c)``.
4. **Former -> Mobile** (:class:`FormerToMobile`): every pixel attends over the tokens; the pixels are queries
   without projection, the tokens get key and value projections to the block's output width; the result is added
   to the feature map.

A stride-2 block (``down``) is ``3x3 dw (stride 2, expansion e1) -> DyReLU -> 1x1 -> 3x3 dw (expansion e2) ->
DyReLU -> 1x1`` with a residual around the second half; a stride-1 block (``mf``) is ``1x1 -> DyReLU -> 3x3 dw ->
DyReLU -> 1x1`` with a residual around the whole. The first block has no bridge (``lite``: the bneck-lite of
MicroNet, ``3x3 dw with channel multiplier e -> ReLU6 -> 1x1``). After the last block one more Mobile -> Former
updates the tokens, and the classifier pools a ``1x1`` expansion (x6) of the last feature map and concatenates the
first token to it, then ``FC -> h-swish -> FC``.

Per-block tables (:data:`TABLES`; channels at a 224x224 input; ``exp``: hidden widths, ``c``: output width)::

    Mobile-Former-52M: stem 3x3 conv 8, stride 2; 3 tokens of 128; head 576 (+128) -> 1024 -> 1000
      features.0  lite  dw x3 (24)        -> 12   stride 2   56x56
      features.1  mf    36                -> 12   stride 1   56x56
      features.2  down  72 / 96           -> 24   stride 2   28x28
      features.3  mf    72                -> 24   stride 1   28x28
      features.4  down  144 / 192         -> 48   stride 2   14x14
      features.5  mf    192               -> 48   stride 1   14x14
      features.6  mf    288               -> 64   stride 1   14x14
      features.7  down  384 / 384         -> 96   stride 2    7x7
      features.8  mf    576               -> 96   stride 1    7x7

    Mobile-Former-96M: stem 3x3 conv 12, stride 2; 4 tokens of 128; head 768 (+128) -> 1280 -> 1000
      features.0  lite  dw x2 (24)        -> 12   stride 1  112x112 (residual)
      features.1  down  72 / 64           -> 16   stride 2   56x56
      features.2  down  96 / 128          -> 32   stride 2   28x28
      features.3  mf    96                -> 32   stride 1   28x28
      features.4  down  192 / 256         -> 64   stride 2   14x14
      features.5  mf    256               -> 64   stride 1   14x14
      features.6  mf    384               -> 88   stride 1   14x14
      features.7  down  528 / 512         -> 128  stride 2    7x7
      features.8  mf    768               -> 128  stride 1    7x7

The widths, expansions and strides are those of the variants the authors released with their checkpoints
(github.com/AAboys/MobileFormer, read for details and key names only; nothing is copied from it); they give the
authors' parameter counts within 1 % for all six released variants (26M aside, which uses group convolutions). Two
details come from that release rather than from the paper's text, and are kept because they are in the released
models (their parameters are in the checkpoints and in the authors' 3.5M / 4.6M):

* each Mobile -> Former output is scaled channel-wise by ``2 h_sigmoid(W z)`` (the authors' ``gbr_dynamic[0]``),
  a :math:`C \\times d` linear of the tokens;
* the Former uses 4 heads and the two bridges 2 heads; the classifier's first FC is followed by BatchNorm1d, which
  :meth:`MergeClassifier.reparameterize` folds into the FC.

Submodules carry the released checkpoints' names (``tokens``, ``stem``, ``features.N.conv1`` ... ``conv4``,
``hyper1``/``hyper2``/``hyper3``, ``local_global.{q,proj,alpha,layer_norm}``, ``global_block.{q,channel_mlp,
layer_norm,ffn,ffn_norm}``, ``global_local.{k,proj}``, ``classifier.{conv,fc,classifier}``, the index of each
module inside its ``nn.Sequential`` included), so that the authors' state dicts load with ``strict=True``.

The dynamic ReLU here is slopes-only (``K = 2`` pieces, no intercepts: the authors' hyper-function produces ``2C``
values, not the ``4C`` of :class:`~mobileone_bench.models.archs.activations.DynamicReLU`); it is the same function as
``DynamicReLU(C, pieces=2, lambda_a=1, own_hyper=False)`` fed with zero intercepts, without the two element-wise
additions of zeros that would cost time on a device (the test checks the equality).

Complexity at 224x224 as the tool counts it (inference form, BN folded; convs, linears and attention products, plus the
dynamic ReLU's two multiplies per element, 1.64M / 2.44M): 52M 50.93M FLOPs / 3.46M params, 96M 94.45M / 4.58M,
against the authors' 52M / 3.5M and 96M / 4.6M (MobileOne's Table 9: 52 / 3.6, 96 / 4.6).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mobileone_bench.models.archs._layers import conv_bn, conv_bn_layers, fold_linear_bn
from mobileone_bench.models.registry import register_model

__all__ = [
    "BlockCfg",
    "MobileFormerCfg",
    "TABLES",
    "TokenHyperFunction",
    "TokenDynamicReLU",
    "MobileToFormer",
    "Former",
    "FormerToMobile",
    "LiteBottleneck",
    "MobileFormerBlock",
    "MobileFormerDownBlock",
    "MergeClassifier",
    "MobileFormer",
]


@dataclass(frozen=True)
class BlockCfg:
    """One row of a Mobile-Former table.

    Attributes:
        kind: ``lite`` (bneck-lite, no bridge), ``mf`` (pw-dw-pw Mobile-Former block) or ``down`` (dw-pw-dw-pw
            Mobile-Former block, the stride-2 one).
        exp: Expansion of the first hidden layer (of the input width; for ``lite`` the depthwise channel multiplier).
        out: Output channels.
        stride: Stride of the (first) depthwise convolution.
        exp2: ``down`` only: expansion of the second depthwise convolution (of the output width).
    """

    kind: str
    exp: int
    out: int
    stride: int = 1
    exp2: int = 0

    def hidden(self, inp: int) -> tuple[int, int]:
        """Hidden widths ``(first, second)`` for an input of ``inp`` channels (second is 0 but for ``down``)."""
        return inp * self.exp, self.out * self.exp2


@dataclass(frozen=True)
class MobileFormerCfg:
    """A Mobile-Former variant.

    Attributes:
        name: Variant name (``52m``, ``96m``).
        stem: Width of the 3x3 stride-2 stem convolution.
        tokens: Number of global tokens.
        token_dim: Width of each token.
        blocks: The table rows.
        head_exp: Expansion of the classifier's 1x1 convolution (of the last block's width).
        head_features: Width of the classifier's first FC.
        bridge_heads: Heads of both cross attentions.
        former_heads: Heads of the Former's self-attention.
        ffn_exp: Expansion of the Former's FFN.
        hyper_reduction: The dynamic-ReLU MLP's hidden layer is ``token_dim / hyper_reduction`` wide.
    """

    name: str
    stem: int
    tokens: int
    token_dim: int
    blocks: tuple[BlockCfg, ...]
    head_exp: int = 6
    head_features: int = 1280
    bridge_heads: int = 2
    former_heads: int = 4
    ffn_exp: int = 2
    hyper_reduction: int = 4


TABLES: dict[str, MobileFormerCfg] = {
    "52m": MobileFormerCfg("52m", stem=8, tokens=3, token_dim=128, head_features=1024, blocks=(
        BlockCfg("lite", 3, 12, 2),
        BlockCfg("mf", 3, 12),
        BlockCfg("down", 6, 24, 2, 4),
        BlockCfg("mf", 3, 24),
        BlockCfg("down", 6, 48, 2, 4),
        BlockCfg("mf", 4, 48),
        BlockCfg("mf", 6, 64),
        BlockCfg("down", 6, 96, 2, 4),
        BlockCfg("mf", 6, 96),
    )),
    "96m": MobileFormerCfg("96m", stem=12, tokens=4, token_dim=128, head_features=1280, blocks=(
        BlockCfg("lite", 2, 12, 1),
        BlockCfg("down", 6, 16, 2, 4),
        BlockCfg("down", 6, 32, 2, 4),
        BlockCfg("mf", 3, 32),
        BlockCfg("down", 6, 64, 2, 4),
        BlockCfg("mf", 4, 64),
        BlockCfg("mf", 6, 88),
        BlockCfg("down", 6, 128, 2, 4),
        BlockCfg("mf", 6, 128),
    )),
}


# --------------------------------------------------------------------------------------------- dynamic ReLU


class TokenHyperFunction(nn.Module):
    """The dynamic-ReLU coefficients from the first global token (Former -> Mobile).

    ``theta = 2 h_sigmoid(FC2(ReLU(FC1(z_0)))) - 1``, ``(N, outputs)`` values in ``[-1, 1]``.

    Args:
        token_dim: Token width ``d``.
        outputs: Number of coefficients (``2 C`` for a slopes-only dynamic ReLU with 2 pieces).
        reduction: The hidden layer has ``d / reduction`` units.
    """

    def __init__(self, token_dim: int, outputs: int, reduction: int = 4):
        super().__init__()
        self.hyper = nn.Sequential(nn.Linear(token_dim, token_dim // reduction), nn.ReLU(),
                                   nn.Linear(token_dim // reduction, outputs), nn.Hardsigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return 2.0 * self.hyper(z[:, 0]) - 1.0


class TokenDynamicReLU(nn.Module):
    """Slopes-only dynamic ReLU with two pieces: ``y_c = max(a^1_c x_c, a^2_c x_c)``.

    ``a^1 = 1 + theta^1``, ``a^2 = theta^2`` with ``theta = [theta^1_1..theta^1_C, theta^2_1..theta^2_C]`` in
    ``[-1, 1]`` (so ``a^1`` in ``[0, 2]``, ``a^2`` in ``[-1, 1]``; ``theta = 0`` is ReLU). The coefficients come from
    outside (:class:`TokenHyperFunction`); every tensor stays 4-D.

    Args:
        channels: Channels ``C``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        theta = theta.reshape(-1, 2 * self.channels, 1, 1)
        return torch.maximum((1.0 + theta[:, :self.channels]) * x, theta[:, self.channels:] * x)

    def elementwise_macs(self, x: torch.Tensor) -> int:
        """Per-element work: one multiply per element and piece (counted by :mod:`complexity`)."""
        return 2 * x.numel()

    def extra_repr(self) -> str:
        return f"{self.channels}, K=2, slopes only"


# -------------------------------------------------------------------------------------------------- bridge


class MobileToFormer(nn.Module):
    """Mobile -> Former light-weight cross attention (tokens ``(N, T, d)`` attend over pixels ``(N, C, H, W)``).

    Per head ``h`` (channels ``h C/heads .. (h + 1) C/heads - 1`` of the feature map and of the query):
    ``z_h = softmax(q_h x_h^T / sqrt(C/heads)) x_h`` with ``q = W_q z`` and the pixels ``x`` as both keys and values;
    then ``z <- LN(z + W_o (gate * concat_h z_h))`` with the authors' gate ``2 h_sigmoid(W_a z)`` (``gate=True``).

    Args:
        channels: Feature-map channels ``C``.
        token_dim: Token width ``d``.
        heads: Number of heads (splitting ``C``).
        gate: Scale the attention output channel-wise by ``2 h_sigmoid(W_a z)`` (the released models do).
    """

    def __init__(self, channels: int, token_dim: int, heads: int = 2, gate: bool = True):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.channels, self.heads = channels, heads
        self.scale = (channels // heads) ** -0.5
        self.alpha = nn.Sequential(nn.Linear(token_dim, channels), nn.Hardsigmoid()) if gate else None
        self.q = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(channels, token_dim)
        self.layer_norm = nn.LayerNorm(token_dim)

    def attend(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The attention output before the gate and the projection, ``(N, T, C)``."""
        n, c, h, w = x.shape
        t = z.shape[1]
        k = x.reshape(n, self.heads, c // self.heads, h * w)  # keys = values = the pixels
        q = (self.q(z) * self.scale).reshape(n, t, self.heads, c // self.heads).transpose(1, 2)
        attn = torch.softmax(torch.matmul(q, k), dim=-1)  # (N, heads, T, HW)
        out = torch.matmul(attn, k.transpose(-1, -2))  # (N, heads, T, C / heads)
        return out.transpose(1, 2).reshape(n, t, c)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        out = self.attend(x, z)
        if self.alpha is not None:
            out = out * (2.0 * self.alpha(z))
        return self.layer_norm(z + self.proj(out))


class Former(nn.Module):
    """The Former: self-attention over the tokens (query projection only, keys = values = tokens, output projection),
    then an FFN (``d -> ffn_exp d -> d``, GELU); a residual and a LayerNorm after each (post-norm).

    Args:
        token_dim: Token width ``d``.
        heads: Number of heads.
        ffn_exp: FFN expansion.
    """

    def __init__(self, token_dim: int, heads: int = 4, ffn_exp: int = 2):
        super().__init__()
        if token_dim % heads:
            raise ValueError(f"token width {token_dim} does not split into {heads} heads")
        self.heads = heads
        self.scale = (token_dim // heads) ** -0.5
        self.ffn = nn.Sequential(nn.Linear(token_dim, token_dim * ffn_exp), nn.GELU(),
                                 nn.Linear(token_dim * ffn_exp, token_dim))
        self.ffn_norm = nn.LayerNorm(token_dim)
        self.q = nn.Linear(token_dim, token_dim)
        self.channel_mlp = nn.Linear(token_dim, token_dim)
        self.layer_norm = nn.LayerNorm(token_dim)

    def attend(self, z: torch.Tensor) -> torch.Tensor:
        """The self-attention output before the output projection, ``(N, T, d)``."""
        n, t, d = z.shape
        kv = z.reshape(n, t, self.heads, d // self.heads).transpose(1, 2)  # (N, heads, T, d / heads)
        q = (self.q(z) * self.scale).reshape(n, t, self.heads, d // self.heads).transpose(1, 2)
        attn = torch.softmax(torch.matmul(q, kv.transpose(-1, -2)), dim=-1)  # (N, heads, T, T)
        return torch.matmul(attn, kv).transpose(1, 2).reshape(n, t, d)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.layer_norm(z + self.channel_mlp(self.attend(z)))
        return self.ffn_norm(z + self.ffn(z))


class FormerToMobile(nn.Module):
    """Former -> Mobile light-weight cross attention (pixels attend over the tokens); returns ``x + attention``.

    Per head ``h``: ``y_h = softmax(x_h^T k_h / sqrt(C/heads)) v_h`` with the pixels ``x`` as queries (no projection),
    ``k = W_k z`` and ``v = W_v z`` (the ``proj`` layer) projected to the feature map's ``C`` channels.

    Args:
        channels: Feature-map channels ``C``.
        token_dim: Token width ``d``.
        heads: Number of heads (splitting ``C``).
    """

    def __init__(self, channels: int, token_dim: int, heads: int = 2):
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.channels, self.heads = channels, heads
        self.scale = (channels // heads) ** -0.5
        self.k = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(token_dim, channels)

    def attend(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The attention output, ``(N, C, H, W)``."""
        n, c, h, w = x.shape
        t, ch = z.shape[1], c // self.heads
        q = x.reshape(n, self.heads, ch, h * w).transpose(-1, -2)  # (N, heads, HW, C / heads)
        k = (self.k(z) * self.scale).reshape(n, t, self.heads, ch).permute(0, 2, 3, 1)  # (N, heads, C / heads, T)
        v = self.proj(z).reshape(n, t, self.heads, ch).transpose(1, 2)  # (N, heads, T, C / heads)
        attn = torch.softmax(torch.matmul(q, k), dim=-1)  # (N, heads, HW, T)
        return torch.matmul(attn, v).transpose(-1, -2).reshape(n, c, h, w)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return x + self.attend(x, z)


# -------------------------------------------------------------------------------------------------- blocks


class LiteBottleneck(nn.Module):
    """bneck-lite (MicroNet): ``3x3 dw (channel multiplier exp) -> BN -> ReLU6 -> 1x1 -> BN``, no bridge; an identity
    residual when shapes match. ``conv.3`` is an empty slot (the authors' channel shuffle) that keeps their keys.

    Args:
        inp: Input channels.
        cfg: The table row.
    """

    def __init__(self, inp: int, cfg: BlockCfg):
        super().__init__()
        hidden = inp * cfg.exp
        self.identity = cfg.stride == 1 and inp == cfg.out
        self.conv = nn.Sequential(*conv_bn_layers(inp, hidden, 3, cfg.stride, inp), nn.ReLU6(), nn.Identity(),
                                  *conv_bn_layers(hidden, cfg.out, 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        return (y + x if self.identity else y), z


class _Bridged(nn.Module):
    """The parts every Mobile-Former block shares: Mobile -> Former, Former, Former -> Mobile."""

    def __init__(self, inp: int, out: int, mf: MobileFormerCfg):
        super().__init__()
        d = mf.token_dim
        self.local_global = MobileToFormer(inp, d, mf.bridge_heads)
        self.global_block = Former(d, mf.former_heads, mf.ffn_exp)
        self.global_local = FormerToMobile(out, d, mf.bridge_heads)

    def update_tokens(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.global_block(self.local_global(x, z))


class MobileFormerBlock(_Bridged):
    """Stride-1 Mobile-Former block: Mobile ``1x1 -> DyReLU -> 3x3 dw -> DyReLU -> 1x1`` (+ identity when shapes
    match), then Former -> Mobile.

    Args:
        inp: Input channels.
        cfg: The table row (``kind="mf"``).
        mf: The variant (token width, heads...).
    """

    def __init__(self, inp: int, cfg: BlockCfg, mf: MobileFormerCfg):
        super().__init__(inp, cfg.out, mf)
        hidden, _ = cfg.hidden(inp)
        d, r = mf.token_dim, mf.hyper_reduction
        self.identity = cfg.stride == 1 and inp == cfg.out
        self.conv1 = conv_bn(inp, hidden)
        self.hyper1 = TokenHyperFunction(d, 2 * hidden, r)
        self.act1 = TokenDynamicReLU(hidden)
        self.conv2 = conv_bn(hidden, hidden, 3, cfg.stride, hidden)
        self.hyper2 = TokenHyperFunction(d, 2 * hidden, r)
        self.act2 = TokenDynamicReLU(hidden)
        self.conv3 = conv_bn(hidden, cfg.out)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.update_tokens(x, z)
        y = self.act1(self.conv1(x), self.hyper1(z))
        y = self.act2(self.conv2(y), self.hyper2(z))
        y = self.conv3(y)
        if self.identity:
            y = y + x
        return self.global_local(y, z), z


class MobileFormerDownBlock(_Bridged):
    """Stride-2 Mobile-Former block: Mobile ``3x3 dw (stride, x exp) -> DyReLU -> 1x1``, then ``3x3 dw (x exp2) ->
    DyReLU -> 1x1`` with a residual around this second half, then Former -> Mobile.

    Args:
        inp: Input channels.
        cfg: The table row (``kind="down"``).
        mf: The variant.
    """

    def __init__(self, inp: int, cfg: BlockCfg, mf: MobileFormerCfg):
        super().__init__(inp, cfg.out, mf)
        hidden1, hidden2 = cfg.hidden(inp)
        d, r, out = mf.token_dim, mf.hyper_reduction, cfg.out
        self.identity = cfg.stride == 1 and inp == out
        self.conv1 = conv_bn(inp, hidden1, 3, cfg.stride, inp)
        self.hyper1 = TokenHyperFunction(d, 2 * hidden1, r)
        self.act1 = TokenDynamicReLU(hidden1)
        self.conv2 = conv_bn(hidden1, out)
        self.conv3 = conv_bn(out, hidden2, 3, 1, out)
        self.hyper3 = TokenHyperFunction(d, 2 * hidden2, r)
        self.act3 = TokenDynamicReLU(hidden2)
        self.conv4 = conv_bn(hidden2, out)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.update_tokens(x, z)
        y = self.conv2(self.act1(self.conv1(x), self.hyper1(z)))
        y = y + self.conv4(self.act3(self.conv3(y), self.hyper3(z)))
        y = self.global_local(y, z)
        return (y + x if self.identity else y), z


class MergeClassifier(nn.Module):
    """The head: ``1x1 conv (x head_exp) -> BN -> ReLU6 -> avg pool -> h-swish``, concatenated with the first token,
    then ``FC -> BN1d -> h-swish -> dropout -> FC``. ``conv.0`` is an empty slot (the authors' channel shuffle).

    Args:
        inp: Channels of the last feature map.
        mf: The variant.
        num_classes: Classifier outputs.
        drop_rate: Dropout before the last FC.
    """

    def __init__(self, inp: int, mf: MobileFormerCfg, num_classes: int = 1000, drop_rate: float = 0.0):
        super().__init__()
        hidden = inp * mf.head_exp
        self.conv = nn.Sequential(nn.Identity(), *conv_bn_layers(inp, hidden, 1))
        self.act = nn.ReLU6()
        self.avgpool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Hardswish())
        self.fc = nn.Sequential(nn.Linear(hidden + mf.token_dim, mf.head_features),
                                nn.BatchNorm1d(mf.head_features), nn.Hardswish())
        self.classifier = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(mf.head_features, num_classes))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        y = torch.flatten(self.avgpool(self.act(self.conv(x))), 1)
        y = self.fc(torch.cat([y, z[:, 0]], dim=1))
        return self.classifier(y)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the BatchNorm1d of the first FC into that FC (idempotent)."""
        fc, bn = self.fc[0], self.fc[1]
        if not isinstance(bn, nn.BatchNorm1d):
            return
        fold_linear_bn(fc, bn)
        self.fc[1] = nn.Identity()


# --------------------------------------------------------------------------------------------------- model


class MobileFormer(nn.Module):
    """Mobile-Former: stem, the table's blocks with the global tokens alongside, a last Mobile -> Former, the head.

    Args:
        cfg: The variant (see :data:`TABLES`).
        num_classes: Classifier outputs.
        drop_rate: Dropout before the last FC (0.2 in the authors' training recipe; off at inference).
    """

    def __init__(self, cfg: MobileFormerCfg, num_classes: int = 1000, drop_rate: float = 0.0):
        super().__init__()
        self.cfg = cfg
        self.tokens = nn.Embedding(cfg.tokens, cfg.token_dim)  # the learned initial tokens (key ``tokens.weight``)
        self.stem = nn.Sequential(*conv_bn_layers(3, cfg.stem, 3, 2), nn.ReLU6())
        blocks: list[nn.Module] = []
        inp = cfg.stem
        for row in cfg.blocks:
            if row.kind == "lite":
                blocks.append(LiteBottleneck(inp, row))
            elif row.kind == "mf":
                blocks.append(MobileFormerBlock(inp, row, cfg))
            elif row.kind == "down":
                blocks.append(MobileFormerDownBlock(inp, row, cfg))
            else:
                raise ValueError(f"unknown Mobile-Former block kind {row.kind!r}")
            inp = row.out
        self.features = nn.ModuleList(blocks)
        self.local_global = MobileToFormer(inp, cfg.token_dim, cfg.bridge_heads)
        self.num_features = cfg.head_features
        self.classifier = MergeClassifier(inp, cfg, num_classes, drop_rate)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last feature map ``(N, C, H/32, W/32)`` and the tokens ``(N, T, d)`` after the last Mobile -> Former."""
        z = self.tokens.weight.unsqueeze(0).expand(x.shape[0], -1, -1)
        x = self.stem(x)
        for block in self.features:
            x, z = block(x, z)
        return x, self.local_global(x, z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(*self.forward_features(x))


def _build(variant: str, num_classes: int = 1000) -> MobileFormer:
    return MobileFormer(TABLES[variant], num_classes=num_classes)


@register_model(name="mobileformer-52", paper_name="Mobileformer-52", input_size=224)
def mobileformer_52(num_classes: int = 1000) -> MobileFormer:
    """Mobile-Former-52M (Chen et al., CVPR 2022): 3 tokens of 128, 9 blocks, 52M FLOPs / 3.5M params."""
    return _build("52m", num_classes)


@register_model(name="mobileformer-96", paper_name="Mobileformer-96", input_size=224)
def mobileformer_96(num_classes: int = 1000) -> MobileFormer:
    """Mobile-Former-96M (Chen et al., CVPR 2022): 4 tokens of 128, 9 blocks, 96M FLOPs / 4.6M params."""
    return _build("96m", num_classes)
