"""The registry: every experiment, chapter by chapter, and the artifacts between them.

Each chapter package (``experiments/chNN/``) lists its experiments and title; nothing
registers itself at import time. Building the registry checks it: a duplicate name, an
artifact two experiments produce, a requirement nobody produces, or a cycle of requirements
raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType

from deepnotes.experiments import ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09
from deepnotes.experiments.base import Experiment

CHAPTERS: tuple[ModuleType, ...] = (ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09)


def chapter_number(package: ModuleType | str) -> int:
    """``4`` for ``deepnotes.experiments.ch04`` (or for the string ``"ch04"``)."""
    name = package if isinstance(package, str) else package.__name__.rsplit(".", 1)[-1]
    return int(name.removeprefix("ch"))


def build_registry(experiments: Iterable[Experiment]) -> dict[str, Experiment]:
    """Name -> experiment, after checking names and the requires/produces graph."""
    registry: dict[str, Experiment] = {}
    for exp in experiments:
        if exp.name in registry:
            raise ValueError(f"duplicate experiment name {exp.name!r} ({exp.module})")
        registry[exp.name] = exp
    made_by = producers(registry)
    for exp in registry.values():
        unknown = [a for a in exp.requires if a not in made_by]
        if unknown:
            raise ValueError(f"experiment {exp.name!r} requires artifacts {unknown} that no "
                             f"registered experiment produces")
    run_order(registry, registry)  # raises on a cycle
    return registry


def producers(registry: Mapping[str, Experiment]) -> dict[str, Experiment]:
    """Artifact name -> the one experiment that produces it."""
    made_by: dict[str, Experiment] = {}
    for exp in registry.values():
        for artifact in exp.produces:
            if artifact in made_by:
                raise ValueError(f"artifact {artifact!r} is produced by both "
                                 f"{made_by[artifact].name!r} and {exp.name!r}")
            made_by[artifact] = exp
    return made_by


def run_order(names: Iterable[str], registry: Mapping[str, Experiment] | None = None
              ) -> list[str]:
    """``names`` ordered so that every producer runs before its consumers (a stable
    topological sort: otherwise the given order). Producers outside ``names`` are not added;
    see :func:`prerequisites`."""
    registry = REGISTRY if registry is None else registry
    names = list(dict.fromkeys(names))
    made_by = producers(registry)
    wanted = set(names)
    done: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join((*path[path.index(name):], name))
            raise ValueError(f"experiments require each other's artifacts in a cycle: {cycle}")
        state[name] = "visiting"
        for artifact in registry[name].requires:
            producer = made_by[artifact].name
            if producer in wanted:
                visit(producer, (*path, name))
        state[name] = "done"
        done.append(name)

    for name in names:
        visit(name, ())
    return done


def prerequisites(names: Iterable[str], registry: Mapping[str, Experiment] | None = None
                  ) -> dict[str, str]:
    """Artifacts that ``names`` need (directly or through other producers) and that no
    experiment of ``names`` produces: ``{artifact: producer name}``."""
    registry = REGISTRY if registry is None else registry
    made_by = producers(registry)
    names = set(names)
    needed: dict[str, str] = {}
    todo = [a for n in names for a in registry[n].requires]
    while todo:
        artifact = todo.pop()
        producer = made_by[artifact]
        if producer.name in names or artifact in needed:
            continue
        needed[artifact] = producer.name
        todo.extend(producer.requires)
    return needed


def build_command(artifact: str, tier: str) -> str:
    """The command that builds ``artifact`` at ``tier``, from the registry."""
    made_by = producers(REGISTRY)
    if artifact not in made_by:
        raise ValueError(f"no registered experiment produces artifact {artifact!r}; known: "
                         f"{', '.join(sorted(made_by))}")
    return f"deepnotes run {made_by[artifact].name} --tier {tier}"


REGISTRY: dict[str, Experiment] = build_registry(
    exp for chapter in CHAPTERS for exp in chapter.EXPERIMENTS)
TITLES: dict[int, str] = {chapter_number(c): c.TITLE for c in CHAPTERS}


def get(name: str) -> Experiment:
    if name not in REGISTRY:
        raise ValueError(f"unknown experiment {name!r}. Known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def chapter_of(exp: Experiment) -> int:
    return chapter_number(exp.chapter)
