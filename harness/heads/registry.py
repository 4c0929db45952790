"""Heads by name: the short strings a user types, e.g. ``sla-3``, ``san-2``, ``sla-4:d=256,phi=tanh``.

Grammar: ``NAME[-K][:OPTION=VALUE[,OPTION=VALUE...]]``. ``K`` is the depth of ``san``/``sla``.
New heads register with :func:`register_head` (as timm registers models), so a plug-in adds
one without editing this file.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .attention import AttentionPool, AttnConfig
from .base import HeadOptionError, PoolingHead
from .mhap import MHAPConfig, MultiheadAttentionPool
from .san import SANConfig, StackedAttention
from .simple import ClsPool, MeanPool, NoOptions
from .sla import SLAConfig, StackedLatentAttention


class UnknownHeadError(ValueError):
    """A head name that is not registered."""


@dataclass(frozen=True)
class HeadInfo:
    name: str
    build: Callable[..., PoolingHead]  # (dim, config, spatial_dims) -> head
    config_cls: type
    takes_depth: bool
    summary: str


_HEADS: dict[str, HeadInfo] = {}
NATIVE = "native"


def register_head(name: str, build, config_cls, takes_depth: bool = False, summary: str = "") -> None:
    if name in _HEADS or name == NATIVE:
        raise ValueError(f"head {name!r} is already registered")
    _HEADS[name] = HeadInfo(name, build, config_cls, takes_depth, summary)


register_head("cls", ClsPool, NoOptions, summary="the backbone's first token")
register_head("mean", MeanPool, NoOptions, summary="mean over real positions")
register_head("attn", AttentionPool, AttnConfig, summary="one layer of additive attention")
register_head("san", StackedAttention, SANConfig, takes_depth=True, summary="K stacked additive attention layers")
register_head("sla", StackedLatentAttention, SLAConfig, takes_depth=True, summary="Stacked Latent Attention, K layers")
register_head("mhap", MultiheadAttentionPool, MHAPConfig, summary="multi-head latent-query attention pooling")


def available_heads() -> list[str]:
    """Names a user can type (``san``/``sla`` take ``-K``)."""
    return [NATIVE] + [f"{h.name}-K" if h.takes_depth else h.name for h in _HEADS.values()]


@dataclass(frozen=True)
class HeadSpec:
    """A parsed, validated head: its name and every option resolved (defaults filled in)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_native(self) -> bool:
        return self.name == NATIVE

    @property
    def label(self) -> str:
        """Short label: ``sla-3``, plus any option that differs from its default (``sla-4:d=128``)."""
        if self.is_native:
            return NATIVE
        info = _HEADS[self.name]
        opts = dict(self.options)
        label = f"{self.name}-{opts.pop('depth')}" if info.takes_depth else self.name
        defaults = dataclasses.asdict(info.config_cls())
        changed = [f"{k}={_fmt(v)}" for k, v in sorted(opts.items()) if defaults.get(k) != v]
        return label + (":" + ",".join(changed) if changed else "")

    def config(self):
        return _HEADS[self.name].config_cls(**self.options)


def _fmt(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _cast(name: str, field_type, raw: str):
    kind = field_type if isinstance(field_type, type) else {"int": int, "float": float, "str": str, "bool": bool}[field_type]
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return raw.lower() in ("true", "1")
        return kind(raw)
    except ValueError:
        raise HeadOptionError(f"option {name}={raw!r} must be of type {kind.__name__}") from None


_SPEC = re.compile(r"^(?P<name>[a-z_]+)(?:-(?P<depth>\d+))?(?::(?P<opts>.*))?$")


def parse_head_spec(spec: str | HeadSpec, **overrides) -> HeadSpec:
    """``"sla-4:d=256,phi=tanh"`` -> HeadSpec('sla', {depth: 4, d: 256, phi: 'tanh', ...}).

    ``overrides`` (Python values) win over options in the string. Unknown heads and options
    raise errors that list what exists.
    """
    if isinstance(spec, HeadSpec):
        spec, overrides = spec.label, {**spec.options, **overrides}
    text = spec.strip().lower()
    match = _SPEC.match(text)
    name = match.group("name") if match else text
    if name == NATIVE:
        if (match and (match.group("depth") or match.group("opts"))) or overrides:
            raise HeadOptionError("head 'native' takes no depth or options: it is the model's own pooling")
        return HeadSpec(NATIVE)
    if not match or name not in _HEADS:
        raise UnknownHeadError(f"unknown head {spec!r}; available heads: {', '.join(available_heads())} "
                               "(options as sla-3:d=128,phi=tanh)")
    info = _HEADS[name]
    fields = {f.name: f for f in dataclasses.fields(info.config_cls)}
    options: dict[str, Any] = {}
    if info.takes_depth:
        if match.group("depth") is None:
            raise HeadOptionError(f"head {name!r} needs a depth: write {name}-K, e.g. {name}-2")
        options["depth"] = int(match.group("depth"))
    elif match.group("depth") is not None:
        raise HeadOptionError(f"head {name!r} takes no depth: write {name!r} without '-{match.group('depth')}'")
    for item in filter(None, (match.group("opts") or "").split(",")):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise HeadOptionError(f"head option {item!r} must be written as option=value")
        options[key] = raw.strip()
    options.update(overrides)
    for key, value in list(options.items()):
        if key not in fields:
            valid = ", ".join(k for k in fields if k != "depth") or "none"
            raise HeadOptionError(f"head {name!r} has no option {key!r}; its options: {valid}")
        if isinstance(value, str) and fields[key].type not in (str, "str"):
            options[key] = _cast(key, fields[key].type, value)
    config = info.config_cls(**options)  # validates choices and ranges
    return HeadSpec(name, dataclasses.asdict(config))


def build_head(spec: str | HeadSpec, dim: int, spatial_dims: int = 1, **overrides) -> PoolingHead:
    """A head module for states of width ``dim``; ``spatial_dims`` 2 for image grids."""
    spec = parse_head_spec(spec, **overrides)
    if spec.is_native:
        raise ValueError("'native' is the model's own pooling, not a head module: use harness.patch(model, 'native')")
    return _HEADS[spec.name].build(dim, spec.config(), spatial_dims)
