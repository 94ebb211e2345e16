"""The 3-neuron training problem (notes section 3.3; Blum & Rivest, "Training a 3-node neural
network is NP-complete", Neural Networks 5, 1992).

The network: two hidden linear threshold units and one threshold output unit,

    N_i(x) = +1 if a^(i) . x + b_i > 0 else -1          (i = 1, 2)
    f(x)   = +1 if a^(3)_1 N_1 + a^(3)_2 N_2 + b_3 > 0 else -1.

Decision question: given labelled points ``x_k in R^n`` with ``y_k in {-1, +1}``, do weights
exist with ``f(x_k) = y_k`` for all k? Blum and Rivest show it is NP-complete for points in
{0, 1}^n.

The output unit sees only (N_1, N_2) in {-1, 1}^2, so it computes one of the 14 threshold
functions of two bits (all but XOR and XNOR). Negating a hidden unit's weights negates it
(on finitely many points strict and non-strict inequalities can be traded), so every case
reduces to two: the positives are the points both hidden units accept (AND), or the
negatives are (OR after complementing). For AND: all positives P must lie in both open
halfspaces and each negative must be rejected by at least one unit. The exact procedure
tries every split of the negatives ``N = S_1 + S_2`` (S_1 rejected by unit 1, S_2 by unit 2)
and asks a linear program whether P and S_i are strictly linearly separable:

    exists (a, b):  a . p + b >= 1 (p in P),   a . q + b <= -1 (q in S_i).

That is ``2^(|N| - 1)`` splits (swapping the units is a symmetry): exponential time. An
exponential algorithm for small instances *illustrates* why the problem is hard; it proves
nothing about NP-hardness.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThreeNeuronWeights:
    """Weights of the notes' 3-neuron network.

    Args:
        a1, a2: hidden weights ``(n,)``; b1, b2: hidden biases.
        a3: output weights ``(2,)``; b3: output bias.
    """

    a1: np.ndarray
    b1: float
    a2: np.ndarray
    b2: float
    a3: np.ndarray
    b3: float

    def hidden(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N_1(x), N_2(x))``, each ``(m,)`` in {-1, 1}. ``x``: ``(m, n)``."""
        n1 = np.where(x @ self.a1 + self.b1 > 0, 1, -1)
        n2 = np.where(x @ self.a2 + self.b2 > 0, 1, -1)
        return n1, n2

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Network outputs ``(m,)`` in {-1, 1} for points ``x`` ``(m, n)``."""
        n1, n2 = self.hidden(x)
        return np.where(self.a3[0] * n1 + self.a3[1] * n2 + self.b3 > 0, 1, -1)


@dataclass
class Decision:
    """Answer of a decision procedure.

    Attributes:
        solvable: whether consistent weights exist.
        weights: a witness when solvable (verified on the points), else None.
        lp_calls: linear programs solved (a load-independent measure of work).
        splits: splits of the negatives examined.
    """

    solvable: bool
    weights: ThreeNeuronWeights | None = None
    lp_calls: int = 0
    splits: int = 0


def check_instance(points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(points float64 (m, n), labels int (m,) in {-1, 1})``."""
    x = np.asarray(points, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"points must have shape (m, n) with m >= 1, got {x.shape}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {y.shape}")
    if not np.all(np.isin(y, (-1, 1))):
        raise ValueError(f"labels must be -1 or +1, got values {sorted(set(y.tolist()))}")
    if not np.all(np.isfinite(x)):
        raise ValueError("points must be finite")
    return x, y.astype(int)


def separate(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, float] | None:
    """A hyperplane ``(a, b)`` with ``a.p + b >= 1`` on ``pos`` and ``<= -1`` on ``neg``.

    Solved as a feasibility LP (HiGHS); the returned solution is re-checked on the points
    with strict signs. Returns None when the sets are not strictly separable.

    Args:
        pos: ``(k, n)``; neg: ``(l, n)`` (either may be empty).
    """
    from scipy.optimize import linprog

    n = pos.shape[1] if pos.size else neg.shape[1]
    if len(neg) == 0:
        return np.zeros(n), 1.0
    if len(pos) == 0:
        return np.zeros(n), -1.0
    # Variables (a, b); rows: -(a.p + b) <= -1 and a.q + b <= -1.
    a_ub = np.vstack([np.hstack([-pos, -np.ones((len(pos), 1))]),
                      np.hstack([neg, np.ones((len(neg), 1))])])
    res = linprog(np.zeros(n + 1), A_ub=a_ub, b_ub=-np.ones(len(a_ub)),
                  bounds=[(None, None)] * (n + 1), method="highs")
    if res.status != 0:
        return None
    a, b = res.x[:n], float(res.x[n])
    if np.all(pos @ a + b > 0) and np.all(neg @ a + b <= 0):
        return a, b
    raise RuntimeError("the LP reported a separating hyperplane that does not separate")


def _decide_and(pos: np.ndarray, neg: np.ndarray, decision: Decision):
    """Search splits of ``neg`` for two halfspaces that both contain ``pos``."""
    m = len(neg)

    def sep(subset: tuple[int, ...]):
        # No caching needed: S_1 always holds negative 0 and S_2 never does, so no subset
        # comes up twice.
        decision.lp_calls += 1
        return separate(pos, neg[list(subset)])

    if m == 0:
        decision.splits += 1
        h = sep(())
        return h, h
    # Negative 0 goes to unit 1 (the units are interchangeable).
    for mask in range(2 ** (m - 1)):
        decision.splits += 1
        s1 = (0, *[i for i in range(1, m) if not mask >> (i - 1) & 1])
        s2 = tuple(i for i in range(1, m) if mask >> (i - 1) & 1)
        h1 = sep(s1)
        if h1 is None:
            continue
        h2 = sep(s2)
        if h2 is not None:
            return h1, h2
    return None


def decide(points: np.ndarray, labels: np.ndarray) -> Decision:
    """Exact decision procedure for the 3-neuron network (exponential in the sample count).

    Args:
        points: ``(m, n)`` real points. labels: ``(m,)`` in {-1, +1}.

    Returns:
        A :class:`Decision`; its witness weights classify every point correctly.
    """
    x, y = check_instance(points, labels)
    pos, neg = x[y == 1], x[y == -1]
    decision = Decision(False)
    found = _decide_and(pos, neg, decision)
    a3, b3 = np.array([1.0, 1.0]), -1.0  # AND of the two units
    if found is None:
        found = _decide_and(neg, pos, decision)
        a3, b3 = np.array([-1.0, -1.0]), 1.0  # NAND: negatives are those both units accept
    if found is None:
        return decision
    (a1, b1), (a2, b2) = found
    weights = ThreeNeuronWeights(a1, b1, a2, b2, a3, b3)
    if not np.array_equal(weights.predict(x), y):
        raise RuntimeError("the witness weights misclassify a point")
    decision.solvable = True
    decision.weights = weights
    return decision


# The 16 boolean functions of (N_1, N_2) in {-1, 1}^2 as output tables, minus XOR and XNOR.
_INPUTS = ((-1, -1), (-1, 1), (1, -1), (1, 1))
THRESHOLD_FUNCTIONS_OF_TWO = [
    dict(zip(_INPUTS, table, strict=True))
    for table in itertools.product((-1, 1), repeat=4)
    if table not in ((-1, 1, 1, -1), (1, -1, -1, 1))
]


def halfspace_dichotomies(points: np.ndarray) -> list[np.ndarray]:
    """Every labelling ``(m,)`` in {-1, 1} of ``points`` that one threshold unit produces.

    Brute force over all ``2^m`` labellings, one LP each (reference for tiny instances).
    """
    x = np.asarray(points, dtype=np.float64)
    out = []
    for signs in itertools.product((-1, 1), repeat=len(x)):
        s = np.array(signs)
        if separate(x[s == 1], x[s == -1]) is not None:
            out.append(s)
    return out


def decide_brute_force(points: np.ndarray, labels: np.ndarray) -> bool:
    """Reference decision: try every pair of unit dichotomies and every output function.

    Independent of :func:`decide` (no reduction to AND), ``O(4^m)`` pairs: tiny m only.
    """
    x, y = check_instance(points, labels)
    dichotomies = halfspace_dichotomies(x)
    for d1 in dichotomies:
        for d2 in dichotomies:
            for g in THRESHOLD_FUNCTIONS_OF_TWO:
                if all(g[(int(u), int(v))] == t for u, v, t in zip(d1, d2, y, strict=True)):
                    return True
    return False


def parity_instance(n: int) -> tuple[np.ndarray, np.ndarray]:
    """All of {0, 1}^n labelled by parity (+1 for an odd number of ones)."""
    x = np.array(list(itertools.product((0, 1), repeat=n)), dtype=np.float64)
    return x, np.where(x.sum(1) % 2 == 1, 1, -1)


def hard_instance(n: int, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An unsolvable instance in {0, 1}^n with ``2n + 2`` points and ``n + 1`` negatives.

    It contains 3-bit parity (coordinates 1-3, the rest 0), which no 3-neuron network fits
    (the positives' hull meets the negatives' in both orientations, see the tests); any
    instance containing an unsolvable one is unsolvable. The other ``2n - 6`` points are
    distinct random points with some coordinate beyond the third set, half of each label. So
    the exact procedure must try every split: ``2^n`` per orientation.
    """
    if n < 3:
        raise ValueError(f"n must be >= 3, got {n}")
    core, core_labels = parity_instance(3)
    x = np.hstack([core, np.zeros((8, n - 3))])
    extra: set[tuple[int, ...]] = set()
    while len(extra) < 2 * n - 6:
        p = tuple(int(v) for v in generator.integers(0, 2, n))
        if any(p[3:]):
            extra.add(p)
    extra_x = np.array(sorted(extra), dtype=np.float64).reshape(-1, n)
    extra_y = generator.permutation(np.resize([1, -1], len(extra_x)))
    return np.vstack([x, extra_x]), np.concatenate([core_labels, extra_y]).astype(int)


def planted_instance(n: int, m: int, generator: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, ThreeNeuronWeights]:
    """``m`` random points of {0, 1}^n labelled by a random AND of two halfspaces (solvable).

    Returns the points ``(m, n)``, labels ``(m,)`` and the planted weights.
    """
    x = generator.integers(0, 2, (m, n)).astype(np.float64)
    a1, a2 = generator.normal(size=n), generator.normal(size=n)
    # Thresholds through the middle of the data so both labels are likely.
    b1, b2 = -float(np.median(x @ a1)) + 1e-3, -float(np.median(x @ a2)) + 1e-3
    weights = ThreeNeuronWeights(a1, b1, a2, b2, np.array([1.0, 1.0]), -1.0)
    return x, weights.predict(x), weights
