"""The rules of DESIGN.md for experiments, checked on every registered experiment and on the
source of every experiment module (no list of experiments is written down here)."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from deepnotes.experiments.base import Claim, Experiment, experiment
from deepnotes.experiments.registry import REGISTRY, TITLES, build_registry, chapter_of, run_order

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "deepnotes"
MODULES = sorted(p for p in (PACKAGE / "experiments").glob("ch[0-9][0-9]/*.py")
                 if p.name != "__init__.py")
TIMING_WORDS = re.compile(r"\b(seconds?|wall|latency|throughput|faster|slower|speed|runtime|"
                          r"minutes?|ms)\b", re.IGNORECASE)
FLAGSHIP_SECONDS, OTHER_SECONDS = 120, 20  # DESIGN.md, quick tier on 2 cores
CHAPTER_SECONDS = {8: 30 * 60}  # per chapter, with its prerequisites; others: 12 minutes
ALL_SECONDS = 60 * 60


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_experiment_module_imports_another(path):
    for node in ast.walk(_tree(path)):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            assert not re.match(r"deepnotes\.experiments\.(ch\d\d|ch09_common)", name), (
                f"{path.name} imports {name}: shared code belongs in a topic package or the zoo")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_claim_thresholds_are_not_config_fields(path):
    """``key=value`` may change how an experiment runs, never what counts as holding."""
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Claim":
            threshold = node.args[4] if len(node.args) > 4 else next(
                k.value for k in node.keywords if k.arg == "threshold")
            used = {n.id for n in ast.walk(threshold) if isinstance(n, ast.Name)}
            assert not used & {"cfg", "config"}, (
                f"{path.name}:{node.lineno}: a claim threshold reads the config")


@pytest.mark.parametrize("path", [*MODULES, *sorted((PACKAGE / "zoo").glob("*.py"))],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_seed_arithmetic(path):
    """Randomness comes from named streams (ctx.rng, ctx.manual_seed, ctx.batches)."""
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.BinOp):
            operands = [n for n in (node.left, node.right)
                        if isinstance(n, ast.Name | ast.Attribute)]
            for n in operands:
                name = n.id if isinstance(n, ast.Name) else n.attr
                assert "seed" not in name, f"{path.name}:{node.lineno}: arithmetic on {name}"
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "manual_seed":
            assert not (isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"
                        ), f"{path.name}:{node.lineno}: torch.manual_seed; use ctx.manual_seed"


@pytest.mark.parametrize("name", list(REGISTRY))
def test_budgets_are_steps_not_seconds(name):
    """No config field is a time budget: runs resume exactly and agree on every CPU."""
    for f in dataclasses.fields(REGISTRY[name].config):
        assert not TIMING_WORDS.search(f.name.replace("_", " ")), f"{name}.{f.name}"


@pytest.mark.parametrize("name", list(REGISTRY))
def test_no_timing_claims(name, smoke_runs):
    """Speed belongs in benchmarks/; an experiment may claim machine-independent counts."""
    _, summary = smoke_runs(name)
    for c in summary["claims"]:
        assert not TIMING_WORDS.search(c["name"].replace("_", " ")), c["name"]
        assert not TIMING_WORDS.search(c["statement"]), c["statement"]


def test_time_budgets_per_experiment_and_chapter():
    """Each experiment declares its measured quick-tier time; the DESIGN.md budgets hold."""
    per_chapter: dict[int, float] = {}
    for exp in REGISTRY.values():
        assert exp.quick_seconds is not None, f"{exp.name} declares no quick_seconds"
        cap = FLAGSHIP_SECONDS if exp.flagship else OTHER_SECONDS
        assert 0 < exp.quick_seconds <= cap, f"{exp.name}: {exp.quick_seconds}s > {cap}s"
        per_chapter[chapter_of(exp)] = per_chapter.get(chapter_of(exp), 0) + exp.quick_seconds
    for chapter, seconds in per_chapter.items():
        assert seconds <= CHAPTER_SECONDS.get(chapter, 12 * 60), (chapter, seconds)
    assert sum(per_chapter.values()) <= ALL_SECONDS


def test_every_experiment_has_a_chapter_title_and_a_test_file():
    for exp in REGISTRY.values():
        assert chapter_of(exp) in TITLES and exp.sections and exp.claim
        assert exp.sections[0].split(".")[0] == str(chapter_of(exp)), exp.name
        assert (ROOT / exp.test).is_file(), f"{exp.name}: test file {exp.test} missing"


def _fake(name, requires=(), produces=()):
    @dataclasses.dataclass(frozen=True)
    class Config:
        steps: int = 1

    def run(cfg, ctx):  # pragma: no cover - never run
        raise AssertionError

    return Experiment(name=name, sections=("1.1",), claim="c", config=Config,
                      presets={t: Config() for t in ("smoke", "quick", "full")}, run=run,
                      module=__name__, test=__file__, requires=requires, produces=produces)


def test_registration_refuses_cycles_unknown_requirements_and_double_producers():
    with pytest.raises(ValueError, match="cycle: a -> b -> a|cycle: b -> a -> b"):
        build_registry([_fake("a", requires=("y",), produces=("x",)),
                        _fake("b", requires=("x",), produces=("y",))])
    with pytest.raises(ValueError, match="no registered experiment produces"):
        build_registry([_fake("a", requires=("nowhere",))])
    with pytest.raises(ValueError, match="produced by both"):
        build_registry([_fake("a", produces=("x",)), _fake("b", produces=("x",))])
    with pytest.raises(ValueError, match="duplicate experiment name"):
        build_registry([_fake("a"), _fake("a")])


def test_run_order_puts_producers_first_and_keeps_the_rest_in_place():
    registry = build_registry([_fake("consumer", requires=("m",)), _fake("other"),
                               _fake("producer", produces=("m",))])
    assert run_order(["consumer", "other", "producer"], registry) == [
        "producer", "consumer", "other"]


def test_the_registration_helper_derives_module_config_and_test():
    exp = REGISTRY["cnn-fashion"]
    assert exp.module == "deepnotes.experiments.ch04.cnn_fashion"
    assert exp.test == "tests/experiments/test_ch04.py"
    assert exp.config is type(exp.presets["quick"])
    with pytest.raises(ValueError, match=r"deepnotes\.experiments\.chNN"):
        experiment("x", "1.1", "c", presets=exp.presets, run=lambda cfg, ctx: None)


def test_claim_source_is_notes_or_project():
    assert Claim("a", "s", 1.0, "<", 2.0).source == "notes"
    with pytest.raises(ValueError, match="source must be one of"):
        Claim("a", "s", 1.0, "<", 2.0, source="folklore")
