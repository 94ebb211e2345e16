"""The captioning model: shapes, attention that sums to one, greedy decoding consistent with
teacher forcing, hard attention's REINFORCE gradient and the doubly stochastic penalty."""

from __future__ import annotations

import pytest
import torch

from deepnotes.attention.captioning import (
    MODES,
    Captioner,
    attention_entropy,
    doubly_stochastic_penalty,
    reinforce_surrogate,
)
from deepnotes.attention.scores import hard_attention
from deepnotes.data.scenes import WORDS, encode_captions

V = len(WORDS)


def small(mode: str, seed: int = 0) -> Captioner:
    torch.manual_seed(seed)
    return Captioner(V, mode, channels=16, hidden=24, embed=8, attention_dim=12)


def batch(b: int = 3):
    images = torch.rand(b, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    tokens = encode_captions(["a bag above a boot", "a coat left of a dress above a bag",
                              "a sandal left of a shirt"][:b])
    return images, tokens


@pytest.mark.parametrize("mode", MODES)
def test_shapes_and_attention_weights_sum_to_one_over_the_grid(mode):
    model = small(mode)
    images, tokens = batch()
    out = model(images, tokens, generator=torch.Generator().manual_seed(0))
    assert out.logits.shape == (3, tokens.shape[1], V)
    words, greedy = model.greedy(images, 7)
    assert words.shape == (3, 7) and greedy.logits.shape == (3, 7, V)
    if mode == "none":
        assert out.alpha is None and out.log_prob is None and out.index is None
        return
    for alpha in (out.alpha, greedy.alpha):
        assert alpha.shape[-1] == 64 and (alpha >= 0).all()
        torch.testing.assert_close(alpha.sum(-1), torch.ones(alpha.shape[:-1]))
    assert out.index.shape == (3, tokens.shape[1]) and out.index.max() < 64
    if mode == "hard":
        assert out.log_prob.shape == (3, tokens.shape[1]) and (out.log_prob <= 0).all()
        torch.testing.assert_close(out.log_prob, out.alpha.gather(-1, out.index[..., None])
                                   .squeeze(-1).log())
    else:
        assert out.log_prob is None
        assert torch.equal(greedy.index, greedy.alpha.argmax(-1))


@pytest.mark.parametrize("mode", ["soft", "none", "hard"])
def test_greedy_decoding_is_argmax_of_teacher_forcing_on_its_own_words(mode):
    model = small(mode).eval()
    images, _ = batch()
    words, greedy = model.greedy(images, 6)
    if mode == "hard":  # teacher forcing samples; the greedy path reads the mode of alpha
        feats, keys, h, c = model.start(images)
        word = torch.full((3,), 1)
        for t in range(6):
            logits, h, c, alpha, _, index = model.step(feats, keys, word, h, c, sample=False)
            assert torch.equal(index, alpha.argmax(-1))
            word = logits.argmax(-1)
            assert torch.equal(word, words[:, t])
        return
    with torch.no_grad():
        forced = model(images, words)
    assert torch.equal(forced.logits.argmax(-1), words)
    torch.testing.assert_close(forced.logits, greedy.logits)


def test_hard_attention_reading_the_expectation_is_soft_attention():
    hard, soft = small("hard"), small("soft")
    soft.load_state_dict(hard.state_dict())  # the same parameters
    images, tokens = batch()
    out = hard(images, tokens, generator=torch.Generator().manual_seed(0), soft_fraction=1.0)
    torch.testing.assert_close(out.logits, soft(images, tokens).logits)
    assert (out.log_prob == 0).all()  # nothing was sampled, nothing for REINFORCE


def test_the_grid_follows_the_image_cells():
    """Cell r * 8 + c is computed from the pixels around [8r, 8r + 8) x [8c, 8c + 8)."""
    model = small("soft").eval()
    images = torch.zeros(1, 1, 64, 64, requires_grad=True)
    feats = model.encoder(images)
    feats[0, 3 * 8 + 5].sum().backward()  # row 3, column 5
    grad = images.grad[0, 0].abs()
    ys, xs = torch.nonzero(grad, as_tuple=True)
    centre = ((xs.float().mean() + 0.5) / 8, (ys.float().mean() + 0.5) / 8)
    assert abs(centre[0] - 5.5) < 0.3 and abs(centre[1] - 3.5) < 0.3
    assert xs.max() - xs.min() + 1 <= 22  # the receptive field


def test_reinforce_gradient_raises_the_probability_of_rewarded_samples():
    """Toy check of the sign: one draw from alpha = softmax(theta); a gradient step on the
    surrogate makes that draw more likely when its reward beats the baseline, less likely
    when it does not; and the mean gradient estimates -grad E[R] exactly in expectation."""
    values = torch.eye(4).unsqueeze(0)  # (1, 4 cells, 4): the value tells which cell
    for reward, direction in ((1.0, 1), (-1.0, -1)):
        theta = torch.zeros(1, 4, requires_grad=True)
        draw = hard_attention(torch.softmax(theta, -1), values,
                              generator=torch.Generator().manual_seed(3))
        assert torch.equal(draw.output[0], values[0, draw.index[0]])
        reinforce_surrogate(draw.log_prob, torch.tensor([reward]), 0.0).backward()
        with torch.no_grad():
            after = torch.softmax(theta - 0.5 * theta.grad, -1)[0, draw.index[0]]
        assert direction * (after - 0.25) > 0

    rewards = torch.tensor([0.0, 0.0, 1.0, 0.5])
    theta = torch.tensor([[0.3, -0.2, 0.1, 0.0]], requires_grad=True)
    alpha = torch.softmax(theta, -1)
    exact = torch.autograd.grad(-(alpha * rewards).sum(), theta)[0]
    n = 20000
    alpha = torch.softmax(theta, -1)  # a fresh graph
    draws = hard_attention(alpha.expand(n, 4), values.expand(n, 4, 4),
                           generator=torch.Generator().manual_seed(0))
    baseline = (alpha * rewards).sum().detach()  # any constant keeps it unbiased
    estimate = torch.autograd.grad(
        reinforce_surrogate(draws.log_prob, rewards[draws.index], baseline), theta)[0]
    torch.testing.assert_close(estimate, exact, atol=0.01, rtol=0)


def test_doubly_stochastic_penalty_and_entropy_of_worked_examples():
    # Two steps over 4 cells: total attention per cell [1, 1, 0, 0] -> penalty 0 + 0 + 1 + 1.
    alpha = torch.tensor([[[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0],
                           [0.25, 0.25, 0.25, 0.25]]])
    mask = torch.tensor([[True, True, False]])  # the third step is padding
    assert doubly_stochastic_penalty(alpha, mask).item() == pytest.approx(2.0)
    all_steps = torch.ones(1, 3, dtype=torch.bool)
    # totals [1.25, 1.25, 0.25, 0.25]: 2 * 0.0625 + 2 * 0.5625
    assert doubly_stochastic_penalty(alpha, all_steps).item() == pytest.approx(1.25)
    assert attention_entropy(alpha, mask).item() == pytest.approx(torch.log(torch.tensor(2.0)))


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="mode must be one of"):
        Captioner(V, "glimpse")


def test_the_score_of_a_cell_is_the_number_w_T_m_i_not_the_vector_m_i():
    """Notes 6.2.1: m_i = tanh(y_i W_y + h W_c), s = softmax(m). m_i is a vector (here of
    width 12), one per cell; the softmax over cells needs one number per cell, w^T m_i
    (Show, Attend and Tell, eq. 4; the notes' own 6.2 form w^T tanh(W[k_i, q]))."""
    model = small("soft")
    images, _ = batch()
    feats, keys, h, _ = model.start(images)
    score = model.score
    m = torch.tanh(feats @ score.key_proj.weight.T + score.query_proj(h).unsqueeze(1))
    assert m.shape == (3, 64, 12)  # a vector per cell: softmax(m) is not a distribution
    torch.testing.assert_close(model.attend(h, keys), torch.softmax(m @ score.w.weight[0], -1))
