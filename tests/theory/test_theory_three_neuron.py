"""The 3-neuron training problem (notes 3.3): network, LP separability, exact decision."""

from __future__ import annotations

import numpy as np
import pytest

from deepnotes.theory import (
    ThreeNeuronWeights,
    decide,
    decide_brute_force,
    parity_instance,
    separate,
)
from deepnotes.theory.three_neuron import (
    THRESHOLD_FUNCTIONS_OF_TWO,
    halfspace_dichotomies,
    hard_instance,
    planted_instance,
)


def test_network_follows_the_notes_formula():
    w = ThreeNeuronWeights(np.array([1.0, -1.0]), 0.0, np.array([0.0, 1.0]), -0.5,
                           np.array([1.0, 1.0]), -1.0)
    x = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    n1, n2 = w.hidden(x)
    # N_i = 1 iff a.x + b > 0 (strict), else -1
    assert n1.tolist() == [1, -1, -1, 1] and n2.tolist() == [-1, -1, 1, 1]
    assert w.predict(x).tolist() == [-1, -1, -1, 1]  # AND


def test_separate_finds_strict_separators_and_rejects_xor():
    pos, neg = np.array([[1.0, 1.0], [2.0, 0.5]]), np.array([[0.0, 0.0], [-1.0, 0.3]])
    a, b = separate(pos, neg)
    assert np.all(pos @ a + b > 0) and np.all(neg @ a + b <= 0)
    x, y = parity_instance(2)
    assert separate(x[y == 1], x[y == -1]) is None
    assert separate(pos, np.zeros((0, 2))) is not None
    assert separate(np.zeros((0, 2)), neg) is not None


def test_threshold_functions_of_two_bits():
    assert len(THRESHOLD_FUNCTIONS_OF_TWO) == 14
    xor = {(-1, -1): -1, (-1, 1): 1, (1, -1): 1, (1, 1): -1}
    assert xor not in THRESHOLD_FUNCTIONS_OF_TWO
    # every listed table is realised by a threshold unit a1 N1 + a2 N2 + b3 > 0
    grid = [(a1, a2, b) for a1 in range(-2, 3) for a2 in range(-2, 3) for b in range(-3, 4)]
    for g in THRESHOLD_FUNCTIONS_OF_TWO:
        assert any(all((1 if a1 * u + a2 * v + b > 0 else -1) == out
                       for (u, v), out in g.items()) for a1, a2, b in grid)


def test_halfspace_dichotomies_of_a_square():
    x, _ = parity_instance(2)
    # 4 points in convex position: all 16 labellings but the 2 XOR ones
    assert len(halfspace_dichotomies(x)) == 14


@pytest.mark.parametrize(("name", "points", "labels", "expected"), [
    ("xor", *parity_instance(2), True),
    ("parity3", *parity_instance(3), False),
    ("line +-+-+", np.arange(5.0)[:, None], np.array([1, -1, 1, -1, 1]), False),
    ("line +-+-", np.arange(4.0)[:, None], np.array([1, -1, 1, -1]), False),
    ("line +-+", np.arange(3.0)[:, None], np.array([1, -1, 1]), True),
    ("line -+-", np.arange(3.0)[:, None], np.array([-1, 1, -1]), True),
    ("all positive", np.eye(3), np.array([1, 1, 1]), True),
])
def test_known_answers(name, points, labels, expected):
    d = decide(points, labels)
    assert d.solvable == expected, name
    if expected:
        assert np.array_equal(d.weights.predict(points), labels)
    else:
        assert d.weights is None


def test_parity3_brute_force_agrees():
    assert decide_brute_force(*parity_instance(3)) is False
    assert decide_brute_force(*parity_instance(2)) is True


def test_agrees_with_brute_force_on_random_tiny_instances():
    rng = np.random.default_rng(7)
    answers = []
    for k in range(36):
        m = int(rng.integers(4, 7))
        t = np.sort(rng.choice(10, size=m, replace=False)).astype(np.float64)
        x = [t[:, None], np.stack([t, t ** 2], 1),
             np.stack([t % 3, t // 3], 1)][k % 3]
        y = rng.choice([-1, 1], m)
        exact = decide(x, y)
        assert exact.solvable == decide_brute_force(x, y)
        if exact.solvable:
            assert np.array_equal(exact.weights.predict(x), y)
        answers.append(exact.solvable)
    assert 3 <= sum(not a for a in answers) and 3 <= sum(answers)  # both answers tested


def test_hard_family_is_unsolvable_and_exhaustive():
    rng = np.random.default_rng(0)
    for n in (3, 4, 5):
        x, y = hard_instance(n, rng)
        assert x.shape == (2 * n + 2, n) and len(np.unique(x, axis=0)) == len(x)
        assert (y == -1).sum() == n + 1
        d = decide(x, y)
        assert not d.solvable
        assert d.splits == 2 * 2 ** n  # every split, both orientations


def test_planted_instances_are_solvable():
    rng = np.random.default_rng(1)
    for _ in range(5):
        x, y, w = planted_instance(6, 14, rng)
        assert np.array_equal(w.predict(x), y)
        assert decide(x, y).solvable


def test_validation():
    with pytest.raises(ValueError, match="-1 or \\+1"):
        decide(np.zeros((2, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        decide(np.zeros((2, 2)), np.array([1, 1, 1]))
    with pytest.raises(ValueError, match="n must be"):
        hard_instance(2, np.random.default_rng(0))
