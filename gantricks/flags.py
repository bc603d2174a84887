"""Command-line flags generated from the config: every field of :class:`~gantricks.config.TrainConfig` and of every
registered section gets one flag, with the help text, choices and default written once, in its :func:`option`.

A field's flag is ``--`` + its name with dashes (``instance_anneal_steps`` -> ``--instance-anneal-steps``), or the
name its option gives (``noise.instance_sigma`` -> ``--instance-noise``); section fields are not prefixed, so two
fields may not share a flag (:func:`add_config_flags` refuses it, naming both). The flag's type follows the field's
type: ``bool`` -> ``--x/--no-x``; ``int``/``float``/``str`` (or ``None`` allowed) -> one value; a pair of floats ->
two values; a tuple of floats -> one or more. A section with named presets (``OptimConfig.presets``) also gets
``--<section>-preset NAME``. Unset flags stay ``None``, so :func:`config_fields` returns only what was given.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from .config import TrainConfig
from .section import Choice

__all__ = ["add_config_flags", "config_fields", "flag_of", "given_flags"]

_CORE = ""


def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of a config field."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _dest(section: str, name: str) -> str:
    return f"cfg:{section}:{name}"


def _type_kwargs(cls: type, f: dataclasses.Field) -> dict[str, Any]:
    hint = typing.get_type_hints(cls)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, getattr(types, "UnionType", None)) and len(args) == 1:
        hint = args[0]  # X | None
    if hint is bool:
        return {"action": argparse.BooleanOptionalAction}
    if typing.get_origin(hint) is tuple:
        inner = typing.get_args(hint)
        return {"type": inner[0], "nargs": "+" if inner[-1] is Ellipsis else len(inner)}
    kwargs: dict[str, Any] = {"type": hint}
    check = f.metadata.get("check")
    check = getattr(check, "inner", check)
    if isinstance(check, Choice):
        kwargs["choices"] = tuple(c for c in check.allowed if c is not None)
    return kwargs


def _help(f: dataclasses.Field, default: Any) -> str:
    text = f.metadata.get("help", "")
    shown = default if not isinstance(default, tuple) else " ".join(str(v) for v in default)
    return f"{text} (default: {shown})" if default is not None else text


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field (core first, then a group per section), each defaulting to ``None``."""
    seen: dict[str, str] = {}
    defaults = TrainConfig()

    def add(group: Any, cls: type, section: str, f: dataclasses.Field, default: Any) -> None:
        name = flag_of(f)
        where = f"{section}.{f.name}" if section else f.name
        if name in seen:
            raise ValueError(f"config fields {seen[name]} and {where} both want the flag {name}: give one of them "
                             "another flag with option(..., flag=...)")
        seen[name] = where
        kwargs = _type_kwargs(cls, f)
        metavar = f.metadata.get("metavar")
        if metavar and "action" not in kwargs:
            kwargs["metavar"] = metavar
        group.add_argument(name, dest=_dest(section, f.name), default=None, help=_help(f, default), **kwargs)

    core = parser.add_argument_group("run")
    for f in TrainConfig.core_fields():
        add(core, TrainConfig, _CORE, f, getattr(defaults, f.name))
    for key, cls in TrainConfig.section_types().items():
        group = parser.add_argument_group(f"{key} ({cls.__module__.rsplit('.', 1)[-1]}.py)",
                                          (cls.__doc__ or "").strip().split("\n")[0])
        presets = getattr(cls, "presets", None)
        if presets:
            group.add_argument(f"--{key}-preset", dest=_dest(key, "preset"), choices=tuple(presets), default=None,
                               metavar="NAME", help=f"start the {key} section from a named setting "
                               f"({', '.join(presets)}); its other flags override it")
        section_defaults = getattr(defaults, key)
        for f in dataclasses.fields(cls):
            add(group, cls, key, f, getattr(section_defaults, f.name))


def config_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given on the command line, as a partial :class:`TrainConfig` dict (sections as dicts)."""
    out: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if not dest.startswith("cfg:") or value is None:
            continue
        _, section, name = dest.split(":")
        if isinstance(value, list):
            value = tuple(value)
        if section:
            out.setdefault(section, {})[name] = value
        else:
            out[name] = value
    return out


def given_flags(args: argparse.Namespace, allowed: set[str]) -> list[str]:
    """The config flags given on the command line whose field is not in ``allowed`` (core field names)."""
    names = {_dest(_CORE, f.name): flag_of(f) for f in TrainConfig.core_fields()}
    for key, cls in TrainConfig.section_types().items():
        names[_dest(key, "preset")] = f"--{key}-preset"
        names.update({_dest(key, f.name): flag_of(f) for f in dataclasses.fields(cls)})
    return sorted(flag for dest, flag in names.items()
                  if getattr(args, dest, None) is not None and not (dest.split(":")[1] == _CORE
                                                                    and dest.split(":")[2] in allowed))
