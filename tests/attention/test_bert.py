"""BERT's model: bidirectional encoder that ignores padding, the masked-LM loss over the
selected positions only (ignore index -100), the tied decoder, the NSP head on [CLS], and the
span head restricted to the context."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deepnotes.attention.bert import (
    BertEncoder,
    BertForPretraining,
    BertForQA,
    best_spans,
    qa_loss,
)

KW = {"d_model": 16, "num_heads": 2, "num_layers": 2, "dim_feedforward": 32, "max_len": 24,
      "dropout": 0.0}


def _ids(n=3, length=12, vocab=30, seed=0):
    return torch.randint(5, vocab, (n, length), generator=torch.Generator().manual_seed(seed))


def test_encoder_is_bidirectional_and_padding_changes_nothing_at_real_positions():
    torch.manual_seed(0)
    enc = BertEncoder(30, **KW).eval()
    ids = _ids()
    out = enc(ids)
    changed = ids.clone()
    changed[:, -1] = 7 if int(ids[0, -1]) != 7 else 8
    assert not torch.allclose(enc(changed)[:, 0], out[:, 0])  # the first sees the last
    padded = torch.cat([ids, torch.zeros(3, 5, dtype=torch.long)], dim=1)
    torch.testing.assert_close(enc(padded)[:, :12], out, atol=1e-5, rtol=1e-5)


def test_mlm_loss_is_cross_entropy_over_selected_positions_with_ignore_index_minus_100():
    torch.manual_seed(0)
    model = BertForPretraining(30, **KW).eval()
    ids = _ids()
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 5], labels[2, 0] = 11, 12, 13
    nsp = torch.tensor([0, 1, 0])
    types = torch.zeros_like(ids)
    out = model(ids, types, labels, nsp)
    full = model.mlm_logits(model.encoder(ids, types))  # (N, L, vocab)
    expected = F.cross_entropy(full.flatten(0, 1), labels.flatten(), ignore_index=-100)
    torch.testing.assert_close(out["mlm_loss"], expected)
    assert out["mlm_logits"].shape == (3, 30)
    nsp_expected = F.cross_entropy(model.nsp_head(model.pooler(model.encoder(ids, types)[:, 0])),
                                   nsp)
    torch.testing.assert_close(out["nsp_loss"], nsp_expected)
    torch.testing.assert_close(out["loss"], out["mlm_loss"] + out["nsp_loss"])


def test_the_mlm_decoder_is_the_token_embedding():
    model = BertForPretraining(30, **KW)
    names = [n for n, _ in model.named_parameters()]
    assert not any(p.shape == (30, 16) for n, p in model.named_parameters()
                   if n != "encoder.token_embedding.weight")
    ids, labels = _ids(), torch.full((3, 12), -100)
    labels[0, 0] = 9
    model(ids, torch.zeros_like(ids), labels, torch.tensor([0, 1, 0]))["mlm_loss"].backward()
    grad = model.encoder.token_embedding.weight.grad
    assert grad[9].abs().sum() > 0 and "mlm_bias" in names  # row 9 gets the decoder's gradient


def test_qa_logits_are_per_token_and_minus_inf_outside_the_context():
    torch.manual_seed(0)
    model = BertForQA(30, **KW)
    ids = _ids()
    context = torch.zeros_like(ids, dtype=torch.bool)
    context[:, 4:10] = True
    start, end = model(ids, torch.zeros_like(ids), context)
    assert start.shape == end.shape == (3, 12)
    assert torch.isneginf(start[~context]).all() and torch.isfinite(start[context]).all()
    loss = qa_loss(start, end, torch.tensor([4, 5, 6]), torch.tensor([5, 5, 9]))
    loss.backward()
    assert torch.isfinite(loss) and model.qa_head.weight.grad.abs().sum() > 0


def test_best_spans_maximize_start_plus_end_over_allowed_spans():
    g = torch.Generator().manual_seed(0)
    s, e = torch.randn(50, 9, generator=g), torch.randn(50, 9, generator=g)
    starts, ends = best_spans(s, e, max_answer=3)
    for k in range(50):
        best = max(((i, j) for i in range(9) for j in range(i, min(9, i + 3))),
                   key=lambda ij: float(s[k, ij[0]] + e[k, ij[1]]))
        assert (int(starts[k]), int(ends[k])) == best
