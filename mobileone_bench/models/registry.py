"""Model registry: a name goes in, a model factory (and what the tool needs to know about it) comes out.

Three kinds of names resolve here:

* the tool's own architectures, registered with :func:`register_model` (``mobileone_s0``, ``ablation30-relu``...) by
  the families of :mod:`mobileone_bench.models.archs` as they are imported;
* any model of an outside zoo through a prefix, the way timm parses ``hf-hub:``: a source registered with
  :func:`register_source` (``timm:<name>`` and ``torchvision:<name>``, :mod:`mobileone_bench.models.sources`);
  this module only splits the prefix off, the source knows its zoo;
* friendly aliases for the rows of the paper's tables (``mobilenetv2-x1.4``, ``mnasnet-a1``, ``deit-tiny``...), so
  that a table can be named as the paper writes it. An alias may apply the paper's benchmarking protocol to the
  model it points to (e.g. MobileNetV3 with ReLU instead of hard-swish, Appendix B); ``list`` shows it.

Names the tool knows but cannot build are registered as *unavailable* with the reason
(:func:`register_unavailable`), so that a zoo never silently loses them.

Named zoos (``paper-table9``, ``paper-table13``, ``mobileone``, ``quick``...) are lists of names.

The registry is a leaf: it imports nothing of the package but :mod:`~mobileone_bench.errors`, and neither torch,
timm nor torchvision. Importing :mod:`mobileone_bench.models` fills it (families, sources, aliases and zoos);
:func:`mobileone_bench.models.factory.create_model` builds what it resolves.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

from mobileone_bench.errors import UnknownModelError, UsageError

__all__ = [
    "ModelSpec",
    "register_model",
    "register_alias",
    "register_unavailable",
    "register_zoo",
    "register_source",
    "resolve",
    "expand",
    "list_models",
    "list_zoos",
    "zoo_models",
    "input_shape",
]

#: ``ModelSpec.source`` of the tool's own architectures and of names it knows but cannot build (an outside zoo's
#: specs carry the zoo's prefix, e.g. ``timm``).
OWN, UNAVAILABLE = "own", "unavailable"


@dataclass(frozen=True)
class ModelSpec:
    """What the tool knows about a model before building it.

    Attributes:
        name: The name the user typed, normalised (``mobileone_s0``, ``timm:resnet18``, ``mobilenetv2-x1.4``).
        source: ``own``, ``unavailable``, or the prefix of the outside zoo it comes from (``timm``, ``torchvision``).
        target: For aliases, the name they point to; otherwise the name itself.
        input_size: Default (height, width) of the input image.
        reparameterizable: Whether the train-time model has branches that re-parameterization removes
            (``None`` when not known without building the model).
        description: One line for ``list``.
        paper_name: How the paper's tables name this model, if they do.
        patches: Changes applied after building, e.g. ``hardswish->relu`` (the paper's protocol for MobileNetV3).
        reason: For unavailable models, why.
        factory: Builds the train-time model (``None`` for unavailable ones).
    """

    name: str
    source: str
    target: str
    input_size: tuple[int, int]
    reparameterizable: bool | None = None
    description: str = ""
    paper_name: str | None = None
    patches: tuple[str, ...] = ()
    reason: str | None = None
    factory: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    @property
    def available(self) -> bool:
        return self.source != UNAVAILABLE

    def as_row(self) -> dict[str, Any]:
        """A flat, JSON-friendly description (what ``list --format json`` prints)."""
        return {
            "name": self.name,
            "source": self.source,
            "target": self.target,
            "input_size": list(self.input_size),
            "reparameterizable": self.reparameterizable,
            "paper_name": self.paper_name,
            "patches": list(self.patches),
            "available": self.available,
            "reason": self.reason,
            "description": self.description,
        }


_OWN: dict[str, ModelSpec] = {}
_ALIASES: dict[str, dict[str, Any]] = {}
_ZOOS: dict[str, tuple[Callable[[], list[str]], str]] = {}


def _key(name: str) -> str:
    """Lookup key of a local name: case-insensitive, '-' and '_' interchangeable (mobileone-s0 = mobileone_s0)."""
    return name.strip().lower().replace("_", "-")


def register_model(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    input_size: int | tuple[int, int] = 224,
    reparameterizable: bool = False,
    description: str = "",
    paper_name: str | None = None,
) -> Any:
    """Register one of the tool's own architectures (decorator, as timm's ``register_model``).

    Args:
        fn: A factory ``fn(**kwargs) -> nn.Module`` returning the train-time model.
        name: Registry name; defaults to the function's name.
        input_size: Default input size (an int for square inputs).
        reparameterizable: Whether the model has train-time branches.
        description: One line for ``list``.
        paper_name: How the paper names it, if it does.
    """

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        display = (name or f.__name__).strip().lower()
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        doc = description
        if not doc and f.__doc__:
            doc = f.__doc__.strip().splitlines()[0]
        _OWN[_key(display)] = ModelSpec(display, OWN, display, size, reparameterizable, doc, paper_name, (), None, f)
        return f

    return wrap(fn) if fn is not None else wrap


#: The paper's benchmarking patches an alias may apply (Appendix B: MobileNetV3 with ReLU instead of hard-swish;
#: Table 13: TinyNet with ReLU instead of swish); :data:`mobileone_bench.models.factory.PATCHES` implements them.
PATCH_NAMES = ("hardswish->relu", "silu->relu")


def register_alias(
    name: str,
    target: str,
    *,
    paper_name: str | None = None,
    input_size: int | tuple[int, int] | None = None,
    patches: Iterable[str] = (),
    description: str = "",
    reparameterizable: bool | None = None,
) -> None:
    """Register a friendly name for another registry name (own, ``timm:`` or ``torchvision:``)."""
    size = None if input_size is None else ((input_size, input_size) if isinstance(input_size, int) else tuple(input_size))
    for p in patches:
        if p not in PATCH_NAMES:
            raise ValueError(f"unknown patch {p!r}")
    _ALIASES[_key(name)] = dict(name=name.strip().lower(), target=target, paper_name=paper_name, input_size=size, patches=tuple(patches),
                                description=description, reparameterizable=reparameterizable)


def register_unavailable(name: str, *, paper_name: str | None = None, reason: str) -> None:
    """Register a name the tool knows (e.g. a paper row) but cannot build, with the reason."""
    _ALIASES[_key(name)] = dict(name=name.strip().lower(), target=None, paper_name=paper_name, reason=reason)


def register_zoo(name: str, members: Callable[[], list[str]] | list[str], description: str = "") -> None:
    """Register a named zoo: a list of registry names, or a function returning one (evaluated lazily)."""
    _ZOOS[_key(name)] = ((members if callable(members) else (lambda m=list(members): m)), description)


# --------------------------------------------------------------------------------------------- outside zoos


@dataclass(frozen=True)
class _Source:
    prefix: str
    resolve: Callable[[str], ModelSpec]
    names: Callable[[], Iterable[str]] | None
    suggest: bool


#: Prefix (and each alias of it), lower case -> the outside zoo it names, in the order of registration.
_SOURCES: dict[str, _Source] = {}


def register_source(
    prefix: str,
    resolve_fn: Callable[[str], ModelSpec],
    list_fn: Callable[[], Iterable[str]] | None = None,
    *,
    aliases: Iterable[str] = (),
    suggest: bool = False,
) -> None:
    """Accept the names of an outside zoo behind a prefix, ``<prefix>:<name>`` (as timm parses ``hf-hub:``).

    The registry only parses the prefix; everything the zoo knows stays in the source
    (:mod:`mobileone_bench.models.sources` registers ``timm:`` and ``torchvision:``).

    Args:
        prefix: The prefix, lower case (``timm``); listed names are given as ``<prefix>:<name>``.
        resolve_fn: ``resolve_fn(name) -> ModelSpec`` for the part after the prefix (stripped); raises
            :class:`~mobileone_bench.errors.UnknownModelError` (with close names) for a name the zoo lacks.
        list_fn: Every name of the zoo, for wildcards (``timm:mobilenetv3*``); ``None`` if it cannot be listed.
        aliases: Other prefixes for the same zoo (``tv`` for ``torchvision``).
        suggest: Offer close names of this zoo when a name without a prefix is unknown (needs ``list_fn``).
    """
    source = _Source(prefix.strip().lower(), resolve_fn, list_fn, suggest)
    for p in (source.prefix, *aliases):
        _SOURCES[p.strip().lower()] = source


def _sources() -> list[_Source]:
    """Each registered source once, in the order of registration."""
    return list({id(s): s for s in _SOURCES.values()}.values())


# ------------------------------------------------------------------------------------------------ resolving


def _local_names() -> list[str]:
    return sorted([s.name for s in _OWN.values()] + [a["name"] for a in _ALIASES.values()])


def resolve(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` of a name, without building anything.

    Raises:
        UnknownModelError: With the closest matches.
    """
    key = _key(name)
    if not key:
        raise UsageError("empty model name")
    if key in _OWN:
        return _OWN[key]
    if key in _ALIASES:
        a = _ALIASES[key]
        if a["target"] is None:
            return ModelSpec(a["name"], UNAVAILABLE, a["name"], (224, 224), None, a.get("reason") or "", a["paper_name"], (),
                             a["reason"], None)
        base = resolve(a["target"])
        return replace(
            base,
            name=a["name"],
            target=base.name,
            input_size=a["input_size"] or base.input_size,
            paper_name=a["paper_name"] or base.paper_name,
            patches=a["patches"],
            description=a["description"] or base.description,
            reparameterizable=base.reparameterizable if a["reparameterizable"] is None else a["reparameterizable"],
        )
    prefix, sep, rest = name.strip().partition(":")
    if sep:
        source = _SOURCES.get(prefix.lower())
        if source is not None:
            return source.resolve(rest.strip())
        raise UnknownModelError(name, [f"{s.prefix}:<name>" for s in _sources()])
    raise UnknownModelError(name, _suggest(key))


def _suggest(key: str) -> list[str]:
    local = _local_names()
    by_key = {_key(n): n for n in local}
    out = [by_key[k] for k in difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.6)]
    for source in _sources():
        if out:
            break
        if source.suggest and source.names is not None:
            try:
                close = difflib.get_close_matches(key.replace("-", "_"), tuple(source.names()), 3, 0.75)
                out = [f"{source.prefix}:{m}" for m in close]
            except Exception:  # noqa: BLE001 - suggestions must never hide the real error
                out = []
    return out


def _is_pattern(s: str) -> bool:
    return any(c in s for c in "*?[")


def expand(names: Iterable[str], zoo: str | None = None, *, include_unavailable: bool = True) -> list[ModelSpec]:
    """Turn names, wildcards (``mobileone*``, ``timm:mobilenetv3*``) and an optional zoo into specs, in order.

    Duplicates are dropped (first occurrence wins). A wildcard that matches nothing is an error, as is an unknown
    name: a typo should not silently shrink a sweep.
    """
    out: dict[str, ModelSpec] = {}
    if zoo:
        for n in zoo_models(zoo):
            spec = resolve(n)
            out.setdefault(spec.name, spec)
    for raw in names:
        raw = raw.strip()
        if not raw:
            continue
        if _is_pattern(raw):
            matches = _match(raw)
            if not matches:
                raise UnknownModelError(raw, _suggest(raw.replace("*", "")))
            for n in matches:
                spec = resolve(n)
                out.setdefault(spec.name, spec)
        else:
            spec = resolve(raw)
            out.setdefault(spec.name, spec)
    specs = list(out.values())
    if not include_unavailable:
        specs = [s for s in specs if s.available]
    return specs


def _match(pattern: str) -> list[str]:
    prefix, sep, rest = pattern.partition(":")
    source = _SOURCES.get(prefix.lower()) if sep else None
    if source is not None and source.names is not None:
        return [f"{source.prefix}:{m}" for m in source.names() if fnmatch.fnmatchcase(m, rest)]
    return [n for n in _local_names() if fnmatch.fnmatchcase(_key(n), _key(pattern))]


def list_models(pattern: str | None = None, zoo: str | None = None) -> list[ModelSpec]:
    """Every model the tool knows locally (own + aliases + unavailable), filtered by pattern and/or zoo.

    Outside zoos are too large to list by default; name them with a prefix pattern (``timm:mobile*``).
    """
    if zoo:
        specs = expand([], zoo=zoo)
        if pattern:
            specs = [s for s in specs if fnmatch.fnmatchcase(_key(s.name), _key(pattern))]
        return specs
    if pattern:
        return expand([pattern]) if _is_pattern(pattern) else [resolve(pattern)]
    return [resolve(n) for n in _local_names()]


def list_zoos() -> dict[str, str]:
    """Zoo name -> description."""
    return {k: d for k, (_, d) in sorted(_ZOOS.items())}


def zoo_models(zoo: str) -> list[str]:
    """The registry names of a zoo, in the zoo's order."""
    key = _key(zoo)
    if key not in _ZOOS:
        close = difflib.get_close_matches(key, list(_ZOOS), 3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known zoos: {', '.join(sorted(_ZOOS))}"
        raise UsageError(f"unknown zoo {zoo!r}{hint}")
    return list(_ZOOS[key][0]())


def input_shape(spec: ModelSpec, input_size: tuple[int, int] | None = None, batch: int = 1) -> tuple[int, ...]:
    """The NCHW input shape used for a model (its default size unless one is given)."""
    h, w = input_size or spec.input_size
    return (batch, 3, int(h), int(w))
