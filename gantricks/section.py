"""Config sections: how a trick declares its settings once, and the checks every setting shares.

A trick's module holds one :class:`Section` (a dataclass) whose fields are declared with :func:`option`: the
default, the help text (the command line's ``--help`` and the docs read it from here), a check, and optionally a
flag name. :class:`~gantricks.config.TrainConfig` lists the sections, one registration line each, and loops over
them to validate, copy, serialise and build; the command line (:mod:`gantricks.flags`) is generated from the same
fields. A section also says what its trick adds to a run (:meth:`Section.hooks`, :meth:`Section.latent_prior`, ...);
every method has a "nothing" default, so a section overrides only what its trick needs.

Every check raises ``ValueError("<section>.<field>=<value> is invalid: <what is allowed>")``: one style for all.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .code import LatentCode
    from .config import TrainConfig
    from .hooks import Hook
    from .noise import Prior

__all__ = ["Check", "Choice", "Number", "Section", "betas", "fail", "flag", "non_negative_int", "optional", "option",
           "positive", "positive_int", "probabilities", "text"]

Check = Callable[[str, Any], Any]
"""``check(name, value) -> value`` (possibly normalised, e.g. a list to a tuple); raises via :func:`fail`."""


def fail(name: str, value: Any, allowed: str) -> NoReturn:
    """The one error of every check: the field, its value and what is allowed."""
    raise ValueError(f"{name}={value!r} is invalid: {allowed}")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v  # NaN is not a number here


@dataclass(frozen=True)
class Number:
    """A real number in [lo, hi] (an open end with ``lo_open``/``hi_open``); infinities only where an end is."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    allowed: str = ""
    integer: bool = False

    def __call__(self, name: str, value: Any) -> Any:
        ok = (isinstance(value, int) and not isinstance(value, bool)) if self.integer else _is_number(value)
        ok = ok and self.lo <= value <= self.hi and not (self.lo_open and value == self.lo) \
            and not (self.hi_open and value == self.hi) and (math.isfinite(value) or not self.hi_open)
        if not ok:
            fail(name, value, self.allowed or self._describe())
        return value

    def _describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        lo = "" if self.lo == -math.inf else f"{'>' if self.lo_open else '>='} {self.lo:g}"
        hi = "" if self.hi == math.inf else f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return f"expected {kind} {' and '.join(s for s in (lo, hi) if s)}".rstrip()


positive = Number(0, math.inf, lo_open=True, hi_open=True, allowed="expected a positive finite number")
positive_int = Number(1, math.inf, integer=True, allowed="expected a positive integer")
non_negative_int = Number(0, math.inf, integer=True, allowed="expected an integer >= 0")


@dataclass(frozen=True)
class Choice:
    """One of ``allowed`` (the command line offers the same choices)."""

    allowed: tuple[Any, ...]

    def __call__(self, name: str, value: Any) -> Any:
        if value not in self.allowed:
            fail(name, value, f"allowed values are {self.allowed}")
        return value


def flag(name: str, value: Any) -> bool:
    """``True`` or ``False``."""
    if not isinstance(value, bool):
        fail(name, value, "expected True or False")
    return value


def text(name: str, value: Any) -> str:
    """A string."""
    if not isinstance(value, str):
        fail(name, value, "expected a string")
    return value


def optional(check: Check) -> Check:
    """``None`` or what ``check`` accepts."""

    def check_optional(name: str, value: Any) -> Any:
        return None if value is None else check(name, value)

    check_optional.inner = check  # type: ignore[attr-defined]  # the command line reads its choices
    return check_optional


def betas(name: str, value: Any) -> tuple[float, float]:
    """Two numbers in [0, 1) (Adam's beta1, beta2), as a tuple."""
    b = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(b) != 2 or not all(_is_number(v) and 0.0 <= v < 1.0 for v in b):
        fail(name, value, "expected two numbers in [0, 1)")
    return (float(b[0]), float(b[1]))


def probabilities(name: str, value: Any) -> tuple[float, ...]:
    """At least two numbers >= 0 summing to 1, as a tuple."""
    p = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(p) < 2 or not all(_is_number(v) and v >= 0 for v in p) or abs(sum(p) - 1.0) > 1e-6:
        fail(name, value, "expected >= 2 numbers >= 0 that sum to 1")
    return tuple(float(v) for v in p)


def option(default: Any, help: str, check: Check | None = None, *, flag: str | None = None,
           metavar: str | None = None) -> Any:
    """A config field declared once: its default, help text, check and (optionally) its command-line flag.

    The flag defaults to ``--`` + the field's name with dashes (``instance_anneal_steps`` ->
    ``--instance-anneal-steps``); ``flag`` keeps an older, shorter name (``--instance-noise``).
    """
    return dataclasses.field(default=default, metadata={"help": help, "check": check, "flag": flag,
                                                        "metavar": metavar})


class Section:
    """Base of a trick's config section (a dataclass); every trick is off at its defaults.

    Subclasses set :attr:`key` (the section's name in :class:`~gantricks.config.TrainConfig`, in error messages and
    in dicts) and declare fields with :func:`option`. They override what their trick needs:

    * :meth:`check`: rules between the section's own fields; :meth:`check_with`: rules against the core fields and
      the other sections (a rule between two tricks lives in the later trick's module);
    * :meth:`hooks`: the :class:`~gantricks.hooks.Hook` s the section switches on (they may add loss terms, change
      D's inputs, act around optimiser steps, choose the sampling generator);
    * :meth:`latent_prior`: a latent prior that replaces N(0, I) (at most one section may give one);
      :meth:`latent_code`: what G and D get as labels; :meth:`prepare_data`: a change to the training tensors;
      :meth:`prepare_models`: a change to G or D once built and initialised (e.g. spectral normalisation);
    * :meth:`from_fields`: how a dict of fields becomes the section (e.g. starting from a named preset).
    """

    key: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # tuples stay tuples through JSON round trips
            if isinstance(getattr(self, f.name), list):
                setattr(self, f.name, tuple(getattr(self, f.name)))

    # -- checks ---------------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Every field's own check (normalising values), then :meth:`check`."""
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is not None:
                setattr(self, f.name, check(f"{self.key}.{f.name}", getattr(self, f.name)))
        self.check()

    def check(self) -> None:
        """Rules between this section's fields (raise with :func:`fail`)."""

    def check_with(self, cfg: TrainConfig) -> None:
        """Rules against the core fields and the other sections of ``cfg`` (raise with :func:`fail`)."""

    def fail(self, field: str, allowed: str) -> NoReturn:
        """:func:`fail` for one of this section's fields."""
        fail(f"{self.key}.{field}", getattr(self, field), allowed)

    # -- what the trick adds to a run -----------------------------------------------------------------------------
    def hooks(self, cfg: TrainConfig) -> list[Hook]:
        """The hooks this section switches on, in a fixed order (rebuilt the same way on resume)."""
        return []

    def latent_prior(self, cfg: TrainConfig) -> Prior | None:
        """A latent prior replacing the default N(0, I) of dimension ``cfg.resolved_z_dim``; ``None``: no change."""
        return None

    def latent_code(self, cfg: TrainConfig) -> LatentCode | None:
        """What G and D get as labels (:class:`~gantricks.code.LatentCode`); ``None``: no change."""
        return None

    def prepare_data(self, tensors: tuple[torch.Tensor, ...], cfg: TrainConfig) -> tuple[torch.Tensor, ...]:
        """The training tensors ``(points, labels, ...)`` as this trick wants them (default: unchanged)."""
        return tensors

    def prepare_models(self, g: torch.nn.Module, d: torch.nn.Module, cfg: TrainConfig
                       ) -> tuple[torch.nn.Module, torch.nn.Module]:
        """``(G, D)`` as this trick wants them, after they are built and initialised (default: unchanged)."""
        return g, d

    # -- dicts ----------------------------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def extra_keys(cls) -> tuple[str, ...]:
        """Keys a dict of fields may hold besides the fields (e.g. ``preset``); see :meth:`from_fields`."""
        return ()

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Section:
        """The section from a dict of fields; an unknown key is an error that lists the known ones."""
        known = cls.field_names() + cls.extra_keys()
        unknown = sorted(set(fields) - set(known))
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}; known fields are {sorted(known)}")
        return cls(**fields)

    def updated(self, changes: dict[str, Any]) -> Section:
        """A copy with ``changes`` (a dict of fields, as :meth:`from_fields` takes them) applied."""
        if set(changes) & set(self.extra_keys()):
            return self.from_fields(changes)
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ValueError(f"{type(self).__name__}: unknown field(s) {unknown}; known fields are "
                             f"{sorted(self.field_names())}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value
