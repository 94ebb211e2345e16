"""CycleGAN parts (notes 8.8): image pool, cycle and identity losses, the adversarial sign,
the learning-rate schedule, silhouettes."""

import io

import pytest
import torch

from deepnotes.generative.cyclegan import (
    CycleGenerator,
    CycleObjective,
    ImagePool,
    LinearDecay,
    PatchDiscriminator,
    cycle_loss,
    silhouette,
    silhouette_iou,
)
from deepnotes.generative.gan import least_squares_generator_loss, non_saturating_generator_loss


def _tagged(values) -> torch.Tensor:
    """One constant 1x2x2 image per value: the value identifies the image."""
    return torch.tensor(values, dtype=torch.float32)[:, None, None, None].expand(-1, 1, 2, 2)


def _tags(images: torch.Tensor) -> list[float]:
    return images[:, 0, 0, 0].tolist()


def test_pool_returns_current_images_until_full_then_mixes_with_probability_half():
    pool = ImagePool(5, torch.Generator().manual_seed(0))
    assert _tags(pool.query(_tagged([1, 2, 3]))) == [1, 2, 3] and len(pool) == 3
    assert _tags(pool.query(_tagged([4, 5]))) == [4, 5] and len(pool) == 5  # now full
    stored = set(_tags(pool.images))
    assert stored == {1, 2, 3, 4, 5}
    from_history, total, seen = 0, 0, {1, 2, 3, 4, 5}
    for start in range(100, 4100, 40):
        new = list(range(start, start + 40))
        out = _tags(pool.query(_tagged(new)))
        assert len(out) == 40 and len(pool) == 5
        for incoming, returned in zip(new, out, strict=True):
            # Either the incoming image itself or one stored earlier (an earlier image of this
            # batch included), never an unseen one.
            assert returned == incoming or returned in seen
            from_history += returned != incoming
            total += 1
            seen.add(incoming)
        assert set(_tags(pool.images)) <= seen
    assert abs(from_history / total - 0.5) < 0.03  # 4,000 Bernoulli(1/2) draws


def test_pool_of_size_zero_passes_batches_through_and_detaches():
    x = torch.randn(3, 1, 28, 28, requires_grad=True)
    out = ImagePool(0).query(x * 2)
    assert torch.equal(out, x.detach() * 2) and not out.requires_grad
    assert not ImagePool(4).query(x * 2).requires_grad


def test_pool_state_dict_round_trip_continues_identically_through_a_weights_only_file():
    gen = torch.Generator().manual_seed(3)
    a = ImagePool(6, torch.Generator().manual_seed(1))
    for _ in range(4):
        a.query(torch.randn(4, 1, 28, 28, generator=gen))
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = ImagePool(6, torch.Generator().manual_seed(999))  # another stream: overwritten
    b.load_state_dict(torch.load(buffer, weights_only=True))
    assert len(b) == len(a) == 6 and torch.equal(a.images, b.images)
    for _ in range(5):
        batch = torch.randn(4, 1, 28, 28, generator=gen)
        assert torch.equal(a.query(batch), b.query(batch))
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
    with pytest.raises(ValueError, match="size"):
        ImagePool(5).load_state_dict(a.state_dict())
    empty = ImagePool(3)
    empty.load_state_dict(ImagePool(3).state_dict())
    assert len(empty) == 0 and empty.images is None


def test_cycle_and_identity_losses_on_a_hand_example():
    # G adds 0.1, F adds 0.2; every discriminator output is 0 (LSGAN: (0 - 1)^2 = 1 each).
    calls = {"g": 0, "f": 0}

    def g(x):
        calls["g"] += 1
        return x + 0.1

    def f(y):
        calls["f"] += 1
        return y + 0.2

    def d(images):
        return torch.zeros(len(images), 1, 7, 7)

    x, y = torch.full((2, 1, 28, 28), 0.25), torch.full((2, 1, 28, 28), -0.5)
    with_identity = CycleObjective("least-squares", alpha=10.0, identity=0.5)
    out = with_identity.generators(g, f, d, d, x, y)
    assert out.cycle_x.item() == pytest.approx(0.3) and out.cycle_y.item() == pytest.approx(0.3)
    assert out.identity.item() == pytest.approx(0.1 + 0.2)
    assert out.adversarial_g.item() == out.adversarial_f.item() == 1.0
    # 1 + 1 + alpha (0.3 + 0.3) + 0.5 alpha (0.1 + 0.2)
    assert out.total.item() == pytest.approx(2 + 6 + 1.5)
    assert calls == {"g": 3, "f": 3}
    calls.update(g=0, f=0)
    plain = CycleObjective("least-squares", alpha=10.0, identity=0.0).generators(g, f, d, d, x, y)
    assert plain.total.item() == pytest.approx(8.0) and plain.identity.item() == 0.0
    assert calls == {"g": 2, "f": 2}  # no identity passes G(y), F(x) when switched off
    assert cycle_loss(torch.ones(1, 1, 28, 28), torch.zeros(1, 1, 28, 28)).item() == 1.0
    with pytest.raises(ValueError):
        CycleObjective(alpha=-1.0)
    with pytest.raises(ValueError):
        CycleObjective(loss="hinge")


def test_discriminator_loss_is_half_the_gan_loss_and_ignores_the_generators():
    objective = CycleObjective("least-squares")
    d = PatchDiscriminator(4)
    real, fake = torch.randn(3, 1, 28, 28), torch.randn(3, 1, 28, 28, requires_grad=True)
    loss = objective.discriminator(d, real, fake)
    expected = 0.5 * ((d(real) - 1).pow(2).mean() + d(fake).pow(2).mean())
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert fake.grad is None  # the fakes are detached


def _step_on(loss_of_logit) -> tuple[float, float]:
    """One gradient step of a fake image against a fixed D_Y (logit = 3 * mean pixel):
    D_Y's probability of "real" before and after."""
    fake = torch.zeros(1, 1, 28, 28, requires_grad=True)

    def logit(image):
        return 3.0 * image.mean()

    before = torch.sigmoid(logit(fake)).item()
    loss_of_logit(logit(fake)).backward()
    with torch.no_grad():
        fake -= 10.0 * fake.grad
    return before, torch.sigmoid(logit(fake)).item()


def test_the_notes_adversarial_term_d_y_of_g_x_pushes_the_fake_towards_fake():
    """Decides docs/ERRATA.md 8.8: minimizing the notes' D_Y(G(X)) (D_Y = P(real)) lowers
    D_Y(G(X)); -log D_Y(G(X)) and (D_linear(G(X)) - 1)^2 raise it."""
    before, after = _step_on(torch.sigmoid)  # the notes' Loss[G] adversarial term
    assert before == 0.5 and after < before
    before, after = _step_on(non_saturating_generator_loss)
    assert after > before
    before, after = _step_on(least_squares_generator_loss)
    assert after > before
    # The objective's own term is the GAN loss's generator loss, rising as D says "fake".
    objective = CycleObjective("non-saturating", alpha=0.0, identity=0.0)
    fake_logit = torch.tensor(-2.0, requires_grad=True)
    losses = objective.generators(lambda x: x, lambda y: y,
                                  lambda img: fake_logit.expand(len(img)),
                                  lambda img: fake_logit.expand(len(img)),
                                  torch.zeros(1, 1, 28, 28), torch.zeros(1, 1, 28, 28))
    losses.adversarial_g.backward()
    assert fake_logit.grad.item() < 0  # descent raises the logit: towards "real"


def test_linear_decay_schedule_and_its_scheduler_state_round_trip():
    decay = LinearDecay(constant=3, decay=4)
    assert [decay(s) for s in range(8)] == pytest.approx([1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, LinearDecay(3, 4))
    for _ in range(5):
        opt.step()
        sched.step()
    buffer = io.BytesIO()
    torch.save(sched.state_dict(), buffer)
    buffer.seek(0)
    opt2 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, LinearDecay(3, 4))
    sched2.load_state_dict(torch.load(buffer, weights_only=True))
    assert sched2.get_last_lr() == pytest.approx([0.6]) == sched.get_last_lr()
    with pytest.raises(ValueError):
        LinearDecay(-1, 3)


def test_networks_map_images_to_images_and_patches():
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    out = CycleGenerator(4, 1)(x)
    assert out.shape == x.shape and out.abs().max() <= 1
    assert PatchDiscriminator(4)(x).shape == (2, 1, 7, 7)
    with pytest.raises(ValueError):
        CycleGenerator(4, 1)(torch.zeros(2, 28, 28))


def test_silhouette_fills_enclosed_holes_and_iou_counts_pixels():
    ring = torch.zeros(1, 6, 6, dtype=torch.uint8)
    ring[0, 1:5, 1:5] = 200
    ring[0, 2:4, 2:4] = 0  # an enclosed dark patch: part of the item
    mask = silhouette(ring)
    assert mask.sum() == 16 and mask[0, 2, 2]
    half = torch.zeros(1, 6, 6, dtype=torch.bool)
    half[0, 1:5, 1:3] = True  # 8 of the 16
    assert silhouette_iou(mask, half).tolist() == [0.5]
    empty = torch.zeros(1, 6, 6, dtype=torch.bool)
    assert silhouette_iou(empty, empty).tolist() == [1.0]
