"""Load weights from a local file into a model. Nothing is ever downloaded.

Accepted files: PyTorch state dicts (``.pth``, ``.pt``, ``.pth.tar``; optionally nested under ``state_dict``,
``model`` or ``state_dict_ema``; DataParallel's ``module.`` prefix is stripped) and ``.safetensors``. Files are read
with ``torch.load(weights_only=True)``: a checkpoint that needs arbitrary code to unpickle is refused, not executed.

Layouts understood by :func:`load_weights` (:func:`detect_layout`):

* the model's own layout (``plain``), e.g. Apple's released, unfused MobileOne layout
  (``stage0.rbr_conv.0.conv.weight``, ``...rbr_scale...``, ``...rbr_skip...``, ``...se.reduce/expand...``,
  ``linear.*``);
* a fused (inference) layout, ``...reparam_conv.weight/bias`` keys and no branches: the model is re-parameterized
  first, so a fused checkpoint of a model with branches (MobileOne, or timm's RepVGG, FastViT, MobileOne) loads;
* timm's layout of a family (``stem``, ``stages.N``, ``head.fc``...), renamed to the family's own when the family
  registered a :class:`LayoutAdapter` (MobileOne does, next to its architecture in
  :mod:`mobileone_bench.models.archs.mobileone`: timm's ``conv_kxk``, ``conv_scale``, ``identity``, ``attn.fc1/fc2``
  become ``rbr_conv``, ``rbr_scale``, ``rbr_skip``, ``se.reduce/expand``). An adapter may also reshape the freshly
  built model to what a checkpoint holds (MobileOne takes the number of over-parameterized branches of each block from
  the file). This module knows no family: they register themselves (:func:`register_layout_adapter`).

A file that does not fit raises :class:`CheckpointError` naming how many keys are missing and unexpected, and a few of
them; so does a file whose integer, bool or complex tensors would land in the model's float parameters or buffers
(``load_state_dict`` would cast them to float without a word).

A path that is not a regular file (a named pipe, ``/dev/fd/N`` from a shell's ``<(...)``) cannot be read twice or
seeked: it is read into memory once, on first use, and every later read of that path in this process (the check, the
load, the hash) uses those bytes.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from mobileone_bench.errors import CheckpointError

__all__ = [
    "check_weights_file",
    "read_state_dict",
    "load_weights",
    "detect_layout",
    "file_sha256",
    "LayoutAdapter",
    "register_layout_adapter",
]

_NESTED_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema", "net")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file (hex); a pipe is hashed from the bytes kept when it was read (:func:`check_weights_file`)."""
    import hashlib

    h = hashlib.sha256()
    data = _stream_bytes(Path(path))
    if data is not None:
        h.update(data)
        return h.hexdigest()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save since PyTorch 1.6
_PICKLE_PROTOCOL = 0x80  # the legacy torch.save format starts with a pickle


def _sniff(head: bytes) -> str | None:
    """``"torch"``, ``"safetensors"`` or ``None`` from the first bytes of a file."""
    if head.startswith(_ZIP_MAGIC) or (len(head) >= 2 and head[0] == _PICKLE_PROTOCOL and 2 <= head[1] <= 5):
        return "torch"
    if len(head) >= 9:
        header_len = int.from_bytes(head[:8], "little")
        if 2 <= header_len < (1 << 27) and head[8:9] == b"{":
            return "safetensors"
    return None


#: The bytes of each pipe read so far, by (device, inode): a pipe gives its bytes once, and the tool reads a
#: checkpoint several times (the check while arguments are parsed, the load of each model, the hash in each record).
_STREAMS: dict[tuple[int, int], bytes] = {}
_HEAD = 16


def _stream_bytes(p: Path) -> bytes | None:
    """The whole content of ``p`` when it is not a regular file (a FIFO, ``/dev/fd/N``, a character device), read
    once and kept; ``None`` for a regular file or a folder (read those from disk), or a path that does not exist.

    The first bytes are checked before the rest is read, so an endless stream that is not a checkpoint
    (``/dev/zero``) is refused after 16 bytes instead of being read forever.
    """
    try:
        st = os.stat(p)
    except OSError:
        return None
    if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
        return None
    key = (st.st_dev, st.st_ino)
    if key not in _STREAMS:
        try:
            with open(p, "rb") as f:
                head = f.read(_HEAD)  # a buffered read: up to 16 bytes or the end, however the writer splits them
                _STREAMS[key] = head + (f.read() if _sniff(head) else b"")
        except OSError as exc:
            raise CheckpointError(f"cannot read weights file {p}: {exc.strerror or exc}") from exc
    return _STREAMS[key]


def check_weights_file(path: str | Path) -> str:
    """Check, before any work starts, that ``path`` is a checkpoint this tool can read; returns its kind.

    Only the first bytes of a file are read: a PyTorch file (``torch.save``'s zip or legacy pickle format) or a
    safetensors file (an 8-byte header length, then a JSON header). A pipe is read whole and kept in memory (it
    cannot be read a second time), once its first bytes look like a checkpoint.

    Returns:
        ``"torch"`` or ``"safetensors"``.

    Raises:
        CheckpointError: The file is missing, a folder, empty, unreadable, or not a checkpoint at all.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"weights file not found: {p}")
    if p.is_dir():
        raise CheckpointError(f"weights file {p} is a folder; pass the checkpoint file inside it")
    stream = _stream_bytes(p)
    if stream is not None:
        head = stream[:_HEAD]
    else:
        try:
            with open(p, "rb") as f:
                head = f.read(_HEAD)
        except OSError as exc:
            raise CheckpointError(f"cannot read weights file {p}: {exc.strerror or exc}") from exc
    if not head:
        raise CheckpointError(f"weights file {p} is empty")
    kind = _sniff(head)
    if kind is None:
        raise CheckpointError(f"weights file {p} is not a PyTorch or safetensors checkpoint")
    return kind


def _unpickling_refused(exc: Exception) -> bool:
    import pickle

    text = str(exc)
    return isinstance(exc, pickle.UnpicklingError) or "weights_only" in text or "Unsupported global" in text


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a flat ``name -> tensor`` dict from a local checkpoint file.

    PyTorch files are read with ``torch.load(weights_only=True)``: a pickle that needs arbitrary code (a whole
    pickled model, custom classes) is refused, never executed. The one class allowed beyond tensors and containers
    is :class:`argparse.Namespace` (the training arguments many released checkpoints carry).

    Raises:
        CheckpointError: Missing, not a checkpoint, refused, unreadable, or not a state dict.
    """
    p = Path(path)
    kind = check_weights_file(p)
    stream = _stream_bytes(p)
    try:
        if kind == "safetensors":
            from safetensors.torch import load, load_file

            obj: object = load(stream) if stream is not None else load_file(str(p), device="cpu")
        else:
            import argparse
            import contextlib

            # training scripts (MobileNeXt's among them) save their argparse.Namespace next to the weights: a plain
            # attribute bag, safe to rebuild, so it is allowed; anything else beyond tensors is still refused
            allow = getattr(torch.serialization, "safe_globals", None)  # torch >= 2.5
            with allow([argparse.Namespace]) if allow else contextlib.nullcontext():
                obj = torch.load(io.BytesIO(stream) if stream is not None else str(p), map_location="cpu",
                                 weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every read failure is the same user-facing problem
        if kind == "torch" and _unpickling_refused(exc):
            raise CheckpointError(
                f"weights file {p} holds pickled Python objects beyond tensors, which this tool refuses to load "
                f"because unpickling them could run arbitrary code; save only the state dict "
                f"(torch.save(model.state_dict(), ...)) or use safetensors") from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.split(". ", 1)[0].rstrip(".")
        raise CheckpointError(f"cannot read weights file {p} (corrupt or truncated?): {first[:160]}") from exc
    for key in _NESTED_KEYS:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{p} does not hold a state dict (found {type(obj).__name__})")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{p} holds no tensors")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    return tensors


def detect_layout(state: Mapping[str, torch.Tensor]) -> str:
    """``timm`` or ``timm-fused`` (timm's naming: ``stem``, ``stages.N``), ``fused`` (``reparam_conv`` keys and no
    branches), or ``plain`` (anything else, including Apple's unfused MobileOne layout)."""
    keys = list(state)
    fused = any("reparam_conv." in k for k in keys) and not any(
        ".rbr_conv." in k or ".conv_kxk." in k or k.startswith(("rbr_conv.", "conv_kxk.")) for k in keys)
    timm_names = any(k.startswith(("stem.", "stages.")) for k in keys) and "head.fc.weight" in state
    if timm_names:
        return "timm-fused" if fused else "timm"
    return "fused" if fused else "plain"


StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class LayoutAdapter:
    """What a model family adds to :func:`load_weights` (registered with :func:`register_layout_adapter`).

    Attributes:
        model_type: The family's model class; the adapter applies to its instances.
        from_timm: Renames the keys of timm's layout of the family (``timm`` or ``timm-fused``) to the family's own.
        fit: ``fit(model, state)`` reshapes a freshly built model, before loading, to what the checkpoint holds
            (e.g. the number of branches of each block); called after a fused checkpoint re-parameterized the model.
    """

    model_type: type
    from_timm: Callable[[StateDict], dict[str, torch.Tensor]] | None = None
    fit: Callable[[nn.Module, StateDict], None] | None = None


_ADAPTERS: list[LayoutAdapter] = []


def register_layout_adapter(model_type: type, *,
                            from_timm: Callable[[StateDict], dict[str, torch.Tensor]] | None = None,
                            fit: Callable[[nn.Module, StateDict], None] | None = None) -> LayoutAdapter:
    """Teach :func:`load_weights` the checkpoint layouts of a family (called by the family's module).

    Args:
        model_type: The family's model class.
        from_timm: Renames timm's keys of the family to the family's own.
        fit: Reshapes a freshly built model to the checkpoint before loading.

    Returns:
        The adapter (a later registration for the same class replaces it).
    """
    adapter = LayoutAdapter(model_type, from_timm, fit)
    _ADAPTERS[:] = [a for a in _ADAPTERS if a.model_type is not model_type] + [adapter]
    return adapter


def _adapter(model: nn.Module) -> LayoutAdapter | None:
    return next((a for a in _ADAPTERS if isinstance(model, a.model_type)), None)


def _describe(keys: list[str], n: int = 3) -> str:
    shown = ", ".join(keys[:n])
    return shown + (", ..." if len(keys) > n else "")


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a local checkpoint into ``model`` (in place), converting its layout when needed.

    Args:
        model: A freshly built (train-time) model.
        path: The checkpoint file.

    Returns:
        The model (possibly re-parameterized, if the file holds fused weights), in eval mode.

    Raises:
        CheckpointError: If the file cannot be read or does not fit the model: keys missing or unexpected, a tensor
            of the wrong shape, or an integer, bool or complex tensor where the model has a float parameter or buffer.
    """
    state = read_state_dict(path)
    layout = detect_layout(state)
    adapter = _adapter(model)
    if adapter is not None and adapter.from_timm is not None and layout.startswith("timm"):
        state = adapter.from_timm(state)
        layout = detect_layout(state)
    if layout.endswith("fused"):
        from mobileone_bench.reparameterization import reparameterize

        model = reparameterize(model, inplace=True, fold_bn=False)
    adapter = _adapter(model)
    if adapter is not None and adapter.fit is not None:
        adapter.fit(model, state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_describe(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_describe(unexpected)})")
        raise CheckpointError(f"{Path(path).name} does not fit {type(model).__name__}: {'; '.join(parts)}")
    wrong = [f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in own.items()
             if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise CheckpointError(f"{Path(path).name} does not fit {type(model).__name__}: {len(wrong)} tensors of the "
                              f"wrong shape ({_describe(wrong)})")
    cast = [f"{k} ({str(state[k].dtype).removeprefix('torch.')})" for k, v in own.items()
            if v.is_floating_point() and not state[k].is_floating_point()]
    if cast:
        raise CheckpointError(f"{Path(path).name} does not fit {type(model).__name__}: {len(cast)} tensors that are "
                              f"not floating point where the model has float weights ({_describe(cast)}); loading "
                              f"would cast them to floats without a word: save the float weights (a quantized or "
                              f"mask tensor is not one)")
    model.load_state_dict(state, strict=True)
    return model.eval()
