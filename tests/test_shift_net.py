"""Shift network: sizes and parameter count of the paper's model, head/CAM identity, BN modes,
fractional pooling, paired training, variants. Paper-sized checks run on the meta device."""

from __future__ import annotations

import json
import time

import pytest
import torch

from avscene.models import PRESETS, ShiftNet, ShiftNetConfig, get_preset
from avscene.models.blocks import BatchNorm, FractionalMaxPool1d, ResBlock, Subsample, fractional_pool_bounds
from avscene.models.shift_net import mu_law_compress


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def meta_net(name: str, **overrides) -> ShiftNet:
    with torch.device("meta"):
        return ShiftNet(get_preset(name, **overrides)).eval()


def inputs(cfg: ShiftNetConfig, batch: int, *, seed: int = 0, device: str = "cpu"):
    g = torch.Generator().manual_seed(seed)
    if device == "meta":
        return (torch.empty(batch, *cfg.video_shape, device="meta"),
                torch.empty(batch, *cfg.audio_shape, device="meta"))
    video = torch.rand(batch, *cfg.video_shape, generator=g) * 2 - 1
    audio = (torch.rand(batch, *cfg.audio_shape, generator=g) * 2 - 1) * 0.5
    return video, audio


@pytest.fixture
def tiny_cam() -> ShiftNet:
    torch.manual_seed(0)
    return ShiftNet(get_preset("tiny", cam=True))


# -- configuration --------------------------------------------------------------------------------

def test_paper_config_signal_sizes():
    cfg = get_preset("paper")
    assert (cfg.n_frames, cfg.crop_size, cfg.sample_rate, cfg.audio_channels) == (125, 224, 21000, 2)
    assert cfg.n_samples == 87588  # round(125 * 700.7007), through constants.frame_to_sample
    assert cfg.video_shape == (3, 125, 224, 224) and cfg.audio_shape == (2, 87588)


def test_config_round_trips_through_json_and_validates():
    cfg = get_preset("small", cam=True, audio_input="spectrogram")
    again = ShiftNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ValueError, match="audio_input"):
        get_preset("tiny", audio_input="mel")
    with pytest.raises(ValueError, match="unknown shift-net preset"):
        get_preset("huge")
    with pytest.raises(ValueError, match="merge shortcut"):
        get_preset("paper", stem_width=256)


# -- parameter counts ------------------------------------------------------------------------------

def test_paper_parameter_count_matches_release():
    net = meta_net("paper")
    total, audio = n_params(net), n_params(net.audio)
    assert abs(total - 36.0e6) / 36.0e6 < 0.01, total
    assert abs(audio - 2.48e6) / 2.48e6 < 0.01, audio  # sf/conv1_1 .. sf/conv5_1
    assert abs((total - audio) - 33.55e6) / 33.55e6 < 0.01, total - audio
    assert n_params(meta_net("paper-cam")) == total  # cam only changes a stride


@pytest.mark.parametrize("name,lo,hi", [("small", 1.0e6, 3.0e6), ("small-cam", 1.0e6, 3.0e6), ("tiny", 5e4, 5e5)])
def test_cpu_preset_parameter_counts(name, lo, hi):
    assert lo < n_params(meta_net(name)) < hi


# -- shapes (design doc section 2.7), shape-only pass on the meta device ---------------------------

def test_paper_shapes_of_every_stage():
    net = meta_net("paper")
    video, audio = inputs(net.config, 1, device="meta")
    x = net.stem.conv1(video)
    assert x.shape == (1, 64, 63, 112, 112)
    x = net.stem.pool(x)
    assert x.shape == (1, 64, 63, 56, 56)
    assert net.stem.conv2_2(net.stem.conv2_1(x)).shape == (1, 64, 32, 28, 28)
    a = net.audio.frontend.conv1_1(audio)
    assert a.shape == (1, 64, 21897)
    assert net.audio.frontend.pool(a).shape == (1, 64, 5474)
    for n in (87588, 87587):  # the release's round and int
        assert net.audio.frontend(torch.empty(1, 2, n, device="meta")).shape == (1, 256, 86)
    assert net.audio(audio, 32).shape == (1, 128, 32)
    f = net.features(video, audio)
    assert f["scale0"].shape == (1, 64, 32, 28, 28)
    assert f["scale1"].shape == (1, 128, 32, 28, 28)
    assert f["scale2"].shape == (1, 512, 16, 7, 7)
    assert net.stage4(f["scale1"]).shape == (1, 256, 16, 14, 14)
    assert net.cam(video, audio).shape == (1, 16, 7, 7)
    assert net(video, audio).shape == (1,)
    assert net.embed(video, audio).shape == (1, 512) and net.embed_dim == 512


def test_paper_cam_and_separation_clip_shapes():
    net = meta_net("paper-cam")
    video, audio = inputs(net.config, 2, device="meta")
    assert net.cam(video, audio).shape == (2, 16, 14, 14)
    # 2.135 s separation clip: 63 frames, 44144 samples
    f = meta_net("paper").features(torch.empty(2, 3, 63, 224, 224, device="meta"),
                                   torch.empty(2, 2, 44144, device="meta"))
    assert [tuple(f[k].shape[1:]) for k in ("scale0", "scale1", "scale2")] == [
        (64, 16, 28, 28), (128, 16, 28, 28), (512, 8, 7, 7)]


def test_fine_cam_halves_the_cells_with_the_same_parameters():
    small, fine = meta_net("small"), meta_net("small-cam")
    assert {k: v.shape for k, v in small.state_dict().items()} == {k: v.shape for k, v in fine.state_dict().items()}
    video, audio = inputs(fine.config, 2, device="meta")
    assert small.cam(video, audio).shape == (2, 4, 4, 4)
    assert fine.cam(video, audio).shape == (2, 4, 8, 8)  # time keeps conv4_1's stride
    with pytest.raises(ValueError, match="fine_cam"):
        get_preset("tiny", fine_cam=True)  # needs cam=True too


def test_spectrogram_front_end_matches_waveform_rate():
    net = meta_net("paper", audio_input="spectrogram")
    video, audio = inputs(net.config, 1, device="meta")
    assert net.audio.frontend(audio).shape == (1, 256, 86)
    assert net.cam(video, audio).shape == (1, 16, 7, 7)
    assert n_params(net.audio) < n_params(meta_net("paper").audio)

    torch.manual_seed(0)
    tiny = ShiftNet(get_preset("tiny", audio_input="spectrogram"))
    video, audio = inputs(tiny.config, 2)
    logits = tiny(video, audio)
    assert logits.shape == (2,) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert tiny.audio.frontend.conv1.conv.weight.grad.abs().sum() > 0


# -- head and CAM ----------------------------------------------------------------------------------

def test_logit_is_exactly_the_mean_of_the_cam(tiny_cam):
    tiny_cam.eval()
    video, audio = inputs(tiny_cam.config, 3)
    with torch.no_grad():
        cam = tiny_cam.cam(video, audio)
        logits = tiny_cam(video, audio)
        last_conv = tiny_cam.features(video, audio)["scale2"]
    assert cam.shape == (3, 1, 2, 2)
    assert torch.equal(logits, cam.mean(dim=(1, 2, 3)))
    # the CAM is the head (weights and bias) at every cell, signed
    w, b = tiny_cam.head.weight.view(-1), tiny_cam.head.bias
    manual = torch.einsum("c,bcthw->bthw", w, last_conv) + b
    torch.testing.assert_close(cam, manual, rtol=1e-5, atol=1e-5)


def test_eval_mode_output_of_a_clip_does_not_depend_on_the_batch(tiny_cam):
    video, audio = inputs(tiny_cam.config, 4)
    tiny_cam.eval()
    with torch.no_grad():
        alone = tiny_cam.cam(video[:1], audio[:1])
        in_batch = tiny_cam.cam(video, audio)[:1]
        other_batch = tiny_cam.cam(torch.cat([video[:1], video[:1].flip(-1)]),
                                   torch.cat([audio[:1], -audio[:1]]))[:1]
    torch.testing.assert_close(in_batch, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(other_batch, alone, rtol=1e-4, atol=1e-5)


def test_train_mode_output_depends_on_the_batch(tiny_cam):
    """The release's CAM bug (BN in training mode at inference): this is what eval() prevents."""
    video, audio = inputs(tiny_cam.config, 4)
    tiny_cam.train()
    with torch.no_grad():
        alone = tiny_cam.cam(video[:1], audio[:1])
        in_batch = tiny_cam.cam(video, audio)[:1]
    assert (alone - in_batch).abs().max() > 1e-3


# -- paired training --------------------------------------------------------------------------------

def test_forward_pair_equals_two_forwards_in_eval(tiny_cam):
    tiny_cam.eval()
    video, audio_a = inputs(tiny_cam.config, 3, seed=1)
    _, audio_b = inputs(tiny_cam.config, 3, seed=2)
    with torch.no_grad():
        la, lb = tiny_cam.forward_pair(video, audio_a, audio_b)
        torch.testing.assert_close(la, tiny_cam(video, audio_a), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(lb, tiny_cam(video, audio_b), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(la, lb)


def test_forward_pair_uses_per_half_batch_statistics_in_train(tiny_cam):
    tiny_cam.train()
    video, audio_a = inputs(tiny_cam.config, 3, seed=1)
    _, audio_b = inputs(tiny_cam.config, 3, seed=2)
    with torch.no_grad():
        torch.manual_seed(5)  # same pooling draws in both orders
        la, lb = tiny_cam.forward_pair(video, audio_a, audio_b)
        torch.manual_seed(5)
        ref_a, ref_b = tiny_cam(video, audio_a), tiny_cam(video, audio_b)
    torch.testing.assert_close(la, ref_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(lb, ref_b, rtol=1e-5, atol=1e-6)


# -- variants and gradients -------------------------------------------------------------------------

def test_tiny_forward_backward_is_fast_and_reaches_both_branches():
    torch.manual_seed(0)
    net = ShiftNet(get_preset("tiny"))
    video, audio = inputs(net.config, 4)
    times = []
    for _ in range(3):
        net.zero_grad()
        t0 = time.perf_counter()
        torch.nn.functional.binary_cross_entropy_with_logits(
            net(video, audio), torch.tensor([1.0, 0.0, 1.0, 0.0])).backward()
        times.append(time.perf_counter() - t0)
    assert sorted(times)[1] < 0.2
    assert all(p.grad is not None for p in net.parameters())
    assert net.audio.frontend.conv1_1.conv.weight.grad.abs().sum() > 0
    assert net.stem.conv1.conv.weight.grad.abs().sum() > 0


def test_vision_only_ignores_audio():
    torch.manual_seed(0)
    net = ShiftNet(get_preset("tiny", use_sound=False)).eval()
    video, audio = inputs(net.config, 2)
    with torch.no_grad():
        out = net(video, audio)
        torch.testing.assert_close(net(video, torch.zeros_like(audio)), out, rtol=0, atol=0)
        torch.testing.assert_close(net(video, audio.flip(-1)), out, rtol=0, atol=0)
    torch.manual_seed(0)
    with_sound = ShiftNet(get_preset("tiny")).eval()
    with torch.no_grad():
        assert not torch.allclose(with_sound(video, audio), with_sound(video, audio.flip(-1)))


def test_bad_inputs_raise_actionable_errors():
    net = ShiftNet(get_preset("tiny")).eval()
    video, audio = inputs(net.config, 2)
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        net(video[:, 0], audio)
    with pytest.raises(ValueError, match="audio must be"):
        net(video, audio[:, :1])
    with pytest.raises(ValueError, match="batch sizes"):
        net(video, audio[:1])
    with pytest.raises(ValueError, match="too short"):
        net(video, audio[..., :300])


def test_bn_gamma_is_optional_and_bias_is_always_there():
    assert not any(n.endswith("bn.weight") for n, _ in meta_net("tiny").named_parameters())
    scaled = meta_net("tiny", bn_affine_scale=True)
    assert any(n.endswith("bn.weight") for n, _ in scaled.named_parameters())


def test_residual_block_shortcut_kinds():
    from avscene.models.blocks import BNSettings
    bn = BNSettings()
    assert isinstance(ResBlock(3, 8, 8, 3, 1, bn=bn).shortcut, torch.nn.Identity)
    assert isinstance(ResBlock(3, 8, 8, 3, 2, bn=bn).shortcut, Subsample)
    assert isinstance(ResBlock(1, 8, 16, 15, 4, bn=bn).shortcut, torch.nn.Sequential)
    x = torch.randn(2, 8, 5, 9, 9)
    assert ResBlock(3, 8, 8, 3, (1, 2, 2), bn=bn)(x).shape == (2, 8, 5, 5, 5)
    assert ResBlock(1, 8, 16, 15, 4, bn=bn)(torch.randn(2, 8, 343)).shape == (2, 16, 86)


def test_mu_law_compression():
    x = torch.tensor([-1.0, -0.01, 0.0, 0.01, 1.0])
    y = mu_law_compress(x)
    torch.testing.assert_close(y[[0, 2, 4]], torch.tensor([-1.0, 0.0, 1.0]))
    assert y[3] > 0.2 and torch.equal(y[1], -y[3])


# -- fractional max pooling -------------------------------------------------------------------------

def test_fractional_pool_bounds_random_in_training():
    draws = set()
    for seed in range(50):
        g = torch.Generator().manual_seed(seed)
        b = fractional_pool_bounds(86, 32, randomize=True, generator=g)
        widths = [hi - lo for lo, hi in zip(b[:-1], b[1:])]
        assert b[0] == 0 and b[-1] == 86 and len(widths) == 32
        assert set(widths) <= {2, 3}
        assert all(abs(bi - 86 / 32 * i) < 1 for i, bi in enumerate(b))  # no drift
        draws.add(tuple(b))
    assert len(draws) > 5
    fixed = fractional_pool_bounds(86, 32, randomize=False)
    assert fixed == fractional_pool_bounds(86, 32, randomize=False)
    assert {hi - lo for lo, hi in zip(fixed[:-1], fixed[1:])} <= {2, 3}
    with pytest.raises(ValueError, match="too short"):
        fractional_pool_bounds(20, 32, randomize=False)


def test_fractional_max_pool_module():
    pool = FractionalMaxPool1d()
    x = torch.randn(2, 4, 86)
    pool.train()
    torch.manual_seed(3)
    b = fractional_pool_bounds(86, 32, randomize=True)
    torch.manual_seed(3)
    y = pool(x, 32)
    assert y.shape == (2, 4, 32)
    ref = torch.stack([x[..., lo:hi].amax(-1) for lo, hi in zip(b[:-1], b[1:])], dim=-1)
    assert torch.equal(y, ref)
    assert any(not torch.equal(pool(x, 32), y) for _ in range(5))
    pool.eval()
    assert torch.equal(pool(x, 32), pool(x, 32))
    # gradient reaches exactly one maximum per region
    x.requires_grad_(True)
    pool(x, 32).sum().backward()
    assert x.grad.sum().item() == pytest.approx(2 * 4 * 32)


def test_all_presets_build():
    for name in PRESETS:
        assert meta_net(name).config == get_preset(name)


def test_batch_norm_without_scale_keeps_its_state_dict_and_outputs():
    """β-only batch norm passes a fixed γ = 1 to the kernel (CUDA's backward needs one); that γ is not
    a parameter nor saved, and the outputs are those of batch norm with no γ, exactly."""
    bn = BatchNorm(6, eps=1e-3, momentum=0.01, scale=False)
    assert set(bn.state_dict()) == {"bias", "running_mean", "running_var", "num_batches_tracked"}
    assert [name for name, _ in bn.named_parameters()] == ["bias"]
    with torch.no_grad():
        bn.bias.normal_()
    x = torch.randn(3, 6, 4, 5)  # (B, C, H, W)
    y = bn(x)
    expected = torch.nn.functional.batch_norm(x, torch.zeros(6), torch.ones(6), None, bn.bias, training=True,
                                              momentum=0.01, eps=1e-3)
    assert torch.equal(y, expected)
    y.square().sum().backward()
    assert bn.bias.grad is not None and bn.bias.grad.shape == (6,)
