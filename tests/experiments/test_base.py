"""Claims (computed verdicts that can fail) and type-checked key=value overrides."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from deepnotes.experiments.base import Claim, apply_overrides


def test_claim_holds_is_computed_and_can_fail():
    assert Claim("a", "s", 0.9, ">=", 0.89).holds
    assert not Claim("a", "s", 0.88, ">=", 0.89).holds
    assert not Claim("a", "s", math.nan, "<", 1.0).holds
    assert Claim("a", "s", 1.0, "<=", 1.0).holds and not Claim("a", "s", 1.0, "<", 1.0).holds
    with pytest.raises(ValueError, match="op must be one of"):
        Claim("a", "s", 1.0, "==", 1.0)
    assert Claim("a", "s", 2, ">", 1).to_dict() == {
        "name": "a", "statement": "s", "value": 2.0, "op": ">", "threshold": 1.0, "holds": True,
        "source": "notes"}


@dataclass(frozen=True)
class _Cfg:
    steps: int = 10
    lr: float = 0.1
    name: str = "x"
    flag: bool = False
    hidden: tuple[int, ...] = (4, 2)
    limit: int | None = None


def test_overrides_typed():
    cfg = apply_overrides(_Cfg(), ["steps=3", "lr=1e-3", "flag=true", "hidden=8,4,2",
                                   "limit=none", "name=abc"])
    assert cfg == _Cfg(steps=3, lr=1e-3, name="abc", flag=True, hidden=(8, 4, 2), limit=None)
    assert apply_overrides(_Cfg(), ["limit=5"]).limit == 5


@pytest.mark.parametrize(
    ("item", "message"),
    [("stepz=3", "unknown key 'stepz'.*Valid keys: .*steps=10"),
     ("steps=3.5", "_Cfg.steps expects int, got '3.5'.*Valid keys: .*lr=0.1"),
     ("flag=maybe", "expects bool"),
     ("steps", "not key=value")],
)
def test_overrides_rejected_with_valid_keys(item, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(_Cfg(), [item])
