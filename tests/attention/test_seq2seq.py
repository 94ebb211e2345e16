"""Encoder-decoder translation (6.1, Example 6.1): the attention decoder reads the encoder's
annotations, padding changes nothing, and beam width 1 is greedy decoding."""

from __future__ import annotations

import pytest
import torch

from deepnotes.attention.seq2seq import Seq2Seq

BOS, EOS = 1, 2


def _model(attention=True, seed=0):
    torch.manual_seed(seed)
    return Seq2Seq(11, 9, embed_dim=8, hidden_size=12, attention_dim=10,
                   attention=attention).eval()


def _batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 3, 1])
    source = torch.randint(3, 11, (3, 5), generator=g)
    source[torch.arange(5) >= lengths[:, None]] = 0  # padding
    return source, lengths


def test_teacher_forcing_shapes_and_weights_over_the_real_source_tokens_only():
    source, lengths = _batch()
    target_in = torch.randint(3, 9, (3, 4))
    out = _model()(source, lengths, target_in)
    assert out.logits.shape == (3, 4, 9) and out.alpha.shape == (3, 4, 5)
    torch.testing.assert_close(out.alpha.sum(-1), torch.ones(3, 4))
    assert torch.all(out.alpha[1, :, 3:] == 0) and torch.all(out.alpha[2, :, 1:] == 0)
    assert _model(attention=False)(source, lengths, target_in).alpha is None


def test_padding_does_not_change_a_sentence_s_translation():
    """Packing: the backward GRU starts at each sentence's own last token."""
    model = _model()
    source, lengths = _batch()
    target_in = torch.randint(3, 9, (3, 4))
    batched = model(source, lengths, target_in).logits[1]
    alone = model(source[1:2, :3], lengths[1:2], target_in[1:2]).logits[0]
    torch.testing.assert_close(batched, alone)
    wider = torch.cat([source, torch.zeros(3, 4, dtype=torch.long)], dim=1)  # more padding
    torch.testing.assert_close(model(wider, lengths, target_in).logits, model(
        source, lengths, target_in).logits)


def test_attention_reads_the_encoder_outputs_and_the_fixed_vector_model_does_not():
    """Changing one source token changes the attention context at every step only through
    the annotations: with attention, the gradient of the output reaches every encoder position
    through the context (and a zero-weight position gets none)."""
    model = _model()
    source, lengths = _batch()
    enc = model.encode(source, lengths)
    memory = enc.memory.detach().requires_grad_(True)
    enc = enc._replace(memory=memory)
    logits, _, alpha = model.step(torch.full((3,), BOS), model.start(enc).detach(), enc)
    logits.sum().backward()
    per_position = memory.grad.abs().sum(-1)  # (B, S)
    assert torch.all(per_position[0] > 0)  # every real token of sentence 0 is read
    assert torch.all(per_position[1, 3:] == 0)  # padding is not
    fixed = _model(attention=False)
    enc = fixed.encode(source, lengths)
    memory = enc.memory.detach().requires_grad_(True)
    logits, _, _ = fixed.step(torch.full((3,), BOS), fixed.start(enc).detach(),
                              enc._replace(memory=memory))
    logits.sum().backward()
    assert memory.grad is None or torch.all(memory.grad == 0)  # only the final vector


@pytest.mark.parametrize("attention", [True, False])
def test_beam_width_one_is_exactly_greedy_decoding(attention):
    model = _model(attention, seed=3)
    source, lengths = _batch(seed=4)
    greedy = model.greedy(source, lengths, bos=BOS, eos=EOS, max_len=12).tokens
    beam = model.beam_search(source, lengths, bos=BOS, eos=EOS, max_len=12, width=1)
    for row, tokens in zip(greedy.tolist(), beam, strict=True):
        until = row.index(EOS) + 1 if EOS in row else len(row)
        assert tokens == row[:until]


def test_a_wider_beam_never_finds_a_less_probable_output():
    model = _model(seed=5)
    source, lengths = _batch(seed=6)

    def log_prob(row, tokens):
        target_in = torch.tensor([[BOS] + tokens[:-1]])
        logits = model(source[row:row + 1], lengths[row:row + 1], target_in).logits
        return torch.log_softmax(logits, -1)[0, torch.arange(len(tokens)), tokens].sum()

    for width in (2, 4):
        narrow = model.beam_search(source, lengths, bos=BOS, eos=EOS, max_len=8, width=1)
        wide = model.beam_search(source, lengths, bos=BOS, eos=EOS, max_len=8, width=width)
        for row in range(3):
            if narrow[row][-1] == EOS and wide[row][-1] == EOS:
                assert log_prob(row, wide[row]) >= log_prob(row, narrow[row]) - 1e-5


def test_bad_shapes_and_widths_fail_clearly():
    model = _model()
    with pytest.raises(ValueError, match="source must be"):
        model.encode(torch.zeros(3, dtype=torch.long), torch.tensor([1, 1, 1]))
    source, lengths = _batch()
    with pytest.raises(ValueError, match="beam width"):
        model.beam_search(source, lengths, bos=BOS, eos=EOS, max_len=3, width=0)


def test_teacher_forcing_equals_stepping_the_decoder_by_hand():
    model = _model()
    source, lengths = _batch()
    target_in = torch.randint(3, 9, (3, 4))
    out = model(source, lengths, target_in)
    enc = model.encode(source, lengths)
    state = model.start(enc)
    for t in range(4):
        logits, state, alpha = model.step(target_in[:, t], state, enc)
        torch.testing.assert_close(out.logits[:, t], logits)
        torch.testing.assert_close(out.alpha[:, t], alpha)
