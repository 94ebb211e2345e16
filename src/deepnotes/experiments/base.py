"""What an experiment is: a claim from the notes, a config with tier presets, and a run function.

An experiment module defines a frozen dataclass config (how it runs), three presets
(``smoke``, ``quick``, ``full``), ``run(cfg, ctx) -> Result`` and registers itself with
:func:`experiment`. ``ctx`` is the :class:`deepnotes.engine.RunContext` of the run folder: it
owns Fabric, logging, figures, checkpoints and random streams.

A :class:`Claim` compares one measured number with a threshold that is fixed in the code
*before* the run (a module constant, or a per-tier dict indexed by ``ctx.tier``), never a
config field: ``key=value`` overrides change how an experiment runs, not what counts as
holding. ``holds`` is computed, never set by hand, so a claim can always fail. A claim is
the notes' own (``source="notes"``) or the project's addition (``source="project"``, marked
as such in the report).
"""

from __future__ import annotations

import dataclasses
import math
import operator
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

TIERS = ("smoke", "quick", "full")
SOURCES = ("notes", "project")

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Claim:
    """One checked statement: ``value op threshold``.

    Args:
        name: short identifier, e.g. ``"test_accuracy"``.
        statement: the claim in one sentence, as a reader would say it.
        value: the measured number.
        op: one of ``<``, ``<=``, ``>``, ``>=``.
        threshold: fixed before the run (a constant of the experiment module, per tier where
            it must differ; never a config field).
        source: ``"notes"`` (the notes say it) or ``"project"`` (deepnotes' addition: a check
            the notes do not state, e.g. a parity or a sanity bound).
    """

    name: str
    statement: str
    value: float
    op: str
    threshold: float
    source: str = "notes"

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(
                f"Claim {self.name!r}: op must be one of {list(_OPS)}, got {self.op!r}")
        if self.source not in SOURCES:
            raise ValueError(
                f"Claim {self.name!r}: source must be one of {list(SOURCES)}, got "
                f"{self.source!r}")
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "threshold", float(self.threshold))

    @property
    def holds(self) -> bool:
        # NaN never satisfies a claim.
        return (not math.isnan(self.value)) and _OPS[self.op](self.value, self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "statement": self.statement,
            "value": self.value,
            "op": self.op,
            "threshold": self.threshold,
            "holds": self.holds,
            "source": self.source,
        }


@dataclass
class Result:
    """What ``run`` returns: final metrics, claim checks and, for generative models, text
    samples a reader should see (``{"temperature 0.8": "..."}``). The data a run used is
    recorded by the loaders themselves (:mod:`deepnotes.engine.provenance`), not here."""

    metrics: dict[str, float]
    claims: list[Claim]
    samples: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A registered experiment (build one with :func:`experiment`).

    Args:
        name: command-line name, e.g. ``"mlp-fashion"``.
        sections: notes sections it covers, e.g. ``("2.2", "2.5")``.
        claim: the claim in one sentence.
        config: the frozen config dataclass.
        presets: ``{"smoke": cfg, "quick": cfg, "full": cfg}``.
        run: ``run(cfg, ctx) -> Result``.
        module: dotted module path (for ``deepnotes list``).
        test: the test file that covers it.
        requires: artifact names (:mod:`deepnotes.zoo`) the run loads; the report runs their
            producers first.
        produces: artifact names the run saves.
        quick_seconds: wall time of the quick tier measured when its steps were calibrated
            (2-core CPU, see benchmarks/README.md); the budget rules of DESIGN.md are checked
            against it, the report prints it beside the measured time.
        flagship: a flagship experiment (char LM, CNN, ...) may take up to ~2 minutes at quick
            tier; the others stay under ~20 seconds.
        max_threads: at most this many intra-op threads (``None``: no cap). Small models lose
            more to thread synchronization than they gain (``engine/threads.py``). A config
            field ``threads`` > 0 (per tier, or ``threads=N`` on the command line) pins the
            count instead. The runner applies both and records the result.
        single_process: the run's loop is not built for several processes (the GAN loops:
            two networks and two optimizers); ``devices > 1`` is refused before launch.
    """

    name: str
    sections: tuple[str, ...]
    claim: str
    config: type
    presets: Mapping[str, Any]
    run: Callable[[Any, Any], Result]
    module: str
    test: str
    requires: tuple[str, ...] = ()
    produces: tuple[str, ...] = ()
    quick_seconds: float | None = None
    flagship: bool = False
    max_threads: int | None = None
    single_process: bool = False

    def __post_init__(self) -> None:
        missing = [t for t in TIERS if t not in self.presets]
        if missing:
            raise ValueError(f"experiment {self.name!r} lacks presets for tiers {missing}")
        for tier, cfg in self.presets.items():
            if not isinstance(cfg, self.config):
                raise ValueError(
                    f"experiment {self.name!r}: preset {tier!r} is not a {self.config}")
        if set(self.requires) & set(self.produces):
            raise ValueError(f"experiment {self.name!r} requires what it produces: "
                             f"{sorted(set(self.requires) & set(self.produces))}")

    @property
    def chapter(self) -> str:
        """``"ch04"`` for an experiment in ``deepnotes.experiments.ch04``."""
        return self.module.split(".")[2]

    def config_for(self, tier: str, overrides: Iterable[str] = ()) -> Any:
        if tier not in TIERS:
            raise ValueError(f"unknown tier {tier!r}; expected one of {list(TIERS)}")
        return apply_overrides(self.presets[tier], overrides)


def experiment(name: str, sections: tuple[str, ...] | str, claim: str,
               presets: Mapping[str, Any], run: Callable[[Any, Any], Result],
               **options: Any) -> Experiment:
    """Register-ready :class:`Experiment` with the config class, module and test file derived:
    the config is the presets' class, the module is ``run``'s, the test file is
    ``tests/experiments/test_<chapter>.py``. ``options`` are the other fields
    (``requires``, ``produces``, ``quick_seconds``, ``flagship``, ``max_threads``,
    ``single_process``)."""
    module = run.__module__
    parts = module.split(".")
    if len(parts) != 4 or parts[:2] != ["deepnotes", "experiments"]:
        raise ValueError(f"experiment {name!r}: run must live in deepnotes.experiments.chNN.<m>, "
                         f"got {module}")
    sections = (sections,) if isinstance(sections, str) else tuple(sections)
    options.setdefault("test", f"tests/experiments/test_{parts[2]}.py")
    return Experiment(name=name, sections=sections, claim=claim,
                      config=type(presets["quick"]), presets=dict(presets), run=run,
                      module=module, **options)


def _parse_value(text: str, annotation: Any, key: str, cls_name: str) -> Any:
    """Parse ``text`` as ``annotation`` (bool, int, float, str, tuples of those, Optional)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if type(None) in args and text.lower() in ("none", "null"):
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _parse_value(text, inner[0], key, cls_name)
    if origin is tuple:
        parts = [p for p in text.strip("()[] ").split(",") if p.strip()]
        elem = args[0] if args else str
        return tuple(_parse_value(p.strip(), elem, key, cls_name) for p in parts)
    try:
        if annotation is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if annotation is int:
            return int(text)
        if annotation is float:
            return float(text)
        if annotation is str:
            return text
    except ValueError:
        name = getattr(annotation, "__name__", str(annotation))
        raise ValueError(
            f"{cls_name}.{key} expects {name}, got {text!r}; e.g. {key}=<{name}>"
        ) from None
    raise ValueError(f"{cls_name}.{key} has type {annotation!r}, which cannot be set from the CLI")


def apply_overrides(cfg: Any, overrides: Iterable[str]) -> Any:
    """Return ``cfg`` with ``key=value`` strings applied, type-checked against the fields.

    Unknown keys and ill-typed values raise ``ValueError`` listing the valid keys.
    """
    overrides = list(overrides)
    if not overrides:
        return cfg
    cls = type(cfg)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    valid = ", ".join(f"{f}={getattr(cfg, f)!r}" for f in sorted(fields))
    changes: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value. Valid keys: {valid}")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in fields:
            raise ValueError(f"unknown key {key!r} for {cls.__name__}. Valid keys: {valid}")
        try:
            changes[key] = _parse_value(text.strip(), hints[key], key, cls.__name__)
        except ValueError as exc:
            raise ValueError(f"{exc}. Valid keys: {valid}") from None
    return dataclasses.replace(cfg, **changes)
