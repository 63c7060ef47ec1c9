"""Separation parts: the STFT front end and its inverse, the losses, mixture construction and the
separation U-Net (shapes, variants, parameter counts of the paper's model on the meta device)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from avscene.audio.stft import PAPER_SPECTROGRAM, SpectrogramConfig, analyze, istft, stft, synthesize, unit_to_db
from avscene.data.mixtures import (
    MixtureConfig,
    draw_snr_db,
    make_mixture,
    mix,
    off_screen_index,
    source_levels,
)
from avscene.models import ShiftNet, SeparationNet, SeparationNetConfig
from avscene.models import get_preset as get_shift_preset
from avscene.models.separation_net import (
    LOG_MAG,
    OFF,
    ON,
    OUTPUTS,
    PHASE,
    VARIANTS,
    get_preset,
    input_spectrogram,
    resize_time,
    synthesize_sources,
    target_spectrograms,
)
from avscene.metrics.separation import align_sources, on_off_error_db
from avscene.train.separation_losses import separation_loss

N_PAPER = 44144  # 63 frames at 29.97 fps, 21 kHz


def snr_db(ref: torch.Tensor, est: torch.Tensor) -> float:
    return float(10 * torch.log10(ref.double().pow(2).sum() / (ref.double() - est.double()).pow(2).sum()))


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- STFT front end --------------------------------------------------------------------------------

def test_paper_spectrogram_sizes_and_range():
    cfg = PAPER_SPECTROGRAM
    assert cfg.n_frames(N_PAPER) == 128 and cfg.n_samples(128) == 44016
    log_mag, phase = analyze(0.1 * torch.randn(3, N_PAPER, generator=torch.Generator().manual_seed(0)))
    assert log_mag.shape == phase.shape == (3, 1024, 128)
    assert log_mag.min() >= -1 and log_mag.max() <= 1 and phase.abs().max() <= 1
    with pytest.raises(ValueError, match="at least 1344 samples"):
        analyze(torch.zeros(1, 1000))


def test_analysis_is_the_release_framing():
    """Frames at 336 t, periodic Hann padded at the *end* to 2048, bins 0..1023 (Nyquist dropped),
    dB floored at -100 and mapped [-100, 80] -> [-1, 1], phase / pi; checked against numpy."""
    x = np.random.default_rng(1).standard_normal(5000) * 0.1
    log_mag, phase = analyze(torch.tensor(x, dtype=torch.float32))
    n = np.arange(1344)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / 1344)
    for t in (0, 3, 10):
        spec = np.fft.rfft(x[336 * t : 336 * t + 1344] * window, n=2048)[:1024]
        db = 20 * np.log10(np.maximum(np.abs(spec), 1e-5))
        np.testing.assert_allclose(log_mag[:, t].numpy(), 2 * (db + 100) / 180 - 1, atol=1e-5)
        ok = np.abs(spec) > 1e-2  # phase is well defined
        np.testing.assert_allclose(phase[ok, t].numpy(), np.angle(spec[ok]) / np.pi, atol=1e-4)
    assert log_mag.shape[-1] == 1 + (5000 - 1344) // 336


def test_round_trip_white_noise_is_near_perfect():
    x = 0.1 * torch.randn(2, N_PAPER, generator=torch.Generator().manual_seed(0))
    y = synthesize(*analyze(x), n_samples=N_PAPER)
    covered = PAPER_SPECTROGRAM.n_samples(128)
    assert y.shape == x.shape
    assert snr_db(x[:, 1:covered], y[:, 1:covered]) > 60  # everything but sample 0 (window = 0)
    assert snr_db(x[:, 336:-464], y[:, 336:-464]) > 90  # interior: float32 precision
    assert torch.all(y[:, 0] == 0) and torch.all(y[:, covered:] == 0)  # no frame covers these


def test_sources_take_the_mixture_phase_when_given_the_mixture():
    """With the mixture's magnitude as a source's, ``mixture=`` rebuilds the mixture (mono mean);
    without it, the predicted phase is used."""
    g = torch.Generator().manual_seed(1)
    mixture = 0.1 * torch.randn(2, 2, N_PAPER, generator=g)  # (B, C, N)
    mix_spec = input_spectrogram(mixture)  # (B, 2, F, T)
    wrong_phase = mix_spec.clone()
    wrong_phase[:, PHASE] = torch.rand(wrong_phase[:, PHASE].shape, generator=g) * 2 - 1
    spec = torch.stack([wrong_phase, wrong_phase], dim=1)  # (B, 2 sources, 2, F, T)
    covered = PAPER_SPECTROGRAM.n_samples(128)
    mono = mixture.mean(1)[:, 336:covered - 336]
    rebuilt = synthesize_sources(spec, N_PAPER, mixture=mixture)  # (B, 2, N)
    for k in range(2):
        assert snr_db(mono, rebuilt[:, k, 336:covered - 336]) > 60
    assert snr_db(mono, synthesize_sources(spec, N_PAPER)[:, 0, 336:covered - 336]) < 5


@pytest.mark.parametrize("freq_hz", [440.0, 1000.0, 5000.0])
def test_round_trip_tone_keeps_amplitude_and_gain(freq_hz):
    n = torch.arange(N_PAPER, dtype=torch.float64)
    tone = (0.5 * torch.sin(2 * math.pi * freq_hz * n / 21000 + 0.3)).float()
    log_mag, phase = analyze(tone)
    assert (log_mag <= -1).float().mean() > 0.5  # most bins sit at the -100 dB floor
    y = synthesize(log_mag, phase, n_samples=N_PAPER)
    # The floor's small inconsistency is amplified by the tiny window sum of the first and last
    # few samples (sample 1 has weight 3e-11); 8 samples in, the round trip is near-perfect.
    assert snr_db(tone[8:44008], y[8:44008]) > 80
    assert snr_db(tone[1:44016], y[1:44016]) > 45
    interior = slice(2000, 42000)
    assert abs(float(y[interior].abs().max() - tone[interior].abs().max())) < 1e-4  # no 1.5x gain (release)
    rms_ratio = float(y[interior].pow(2).mean().sqrt() / tone[interior].pow(2).mean().sqrt())
    assert abs(rms_ratio - 1) < 1e-4


def test_dropped_nyquist_bin_is_recovered():
    """A signal at 10.5 kHz (all alternating samples) is only in the dropped bin and its window's
    sidelobes, yet it round-trips; zeroing the bin instead (the release) loses it."""
    n = torch.arange(N_PAPER)
    alt = 0.2 * torch.cos(math.pi * n.double()).float()
    y = synthesize(*analyze(alt), n_samples=N_PAPER)
    assert snr_db(alt[8:44008], y[8:44008]) > 80
    noise = 0.1 * torch.randn(N_PAPER, generator=torch.Generator().manual_seed(2))
    spec = stft(noise)  # (1024, T)
    zeroed = istft(torch.cat([spec, torch.zeros_like(spec[:1])]), n_samples=N_PAPER)
    recovered = istft(spec, n_samples=N_PAPER)
    assert snr_db(noise[1:44016], recovered[1:44016]) > 60 > 45 > snr_db(noise[1:44016], zeroed[1:44016])
    # with all 1025 bins given, no recovery is needed
    full = torch.fft.rfft(noise.unfold(0, 1344, 336) * torch.hann_window(1344), n=2048).T
    assert snr_db(noise[1:44016], istft(full, n_samples=N_PAPER)[1:44016]) > 60


def test_floor_decodes_to_silence_and_batches_of_any_shape():
    log_mag, phase = analyze(torch.zeros(2, 3, 5000))
    assert torch.all(log_mag == -1)
    assert torch.equal(synthesize(log_mag, phase, 5000), torch.zeros(2, 3, 5000))
    x = 0.1 * torch.randn(2, 3, 5000, generator=torch.Generator().manual_seed(3))
    y = synthesize(*analyze(x), n_samples=5000)
    assert y.shape == (2, 3, 5000)
    torch.testing.assert_close(y[1, 2, 400:4000], x[1, 2, 400:4000], atol=1e-5, rtol=0)


def test_inverse_of_a_predicted_spectrogram_does_not_blow_up_at_the_ends():
    """An inconsistent spectrogram (noisy phase, as a prediction) must not be amplified by the
    near-zero window sum of the first and last samples (up to ~1e5 with plain WOLA)."""
    x = 0.1 * torch.randn(1, N_PAPER, generator=torch.Generator().manual_seed(4))
    log_mag, phase = analyze(x)
    g = torch.Generator().manual_seed(5)
    y = synthesize(log_mag + 0.02 * torch.randn(log_mag.shape, generator=g),
                   phase + 0.2 * torch.randn(phase.shape, generator=g), N_PAPER)
    interior_peak = float(y[:, 1344:-1344].abs().max())
    assert float(y[:, :400].abs().max()) < 2 * interior_peak
    assert float(y[:, 43600:44016].abs().max()) < 2 * interior_peak


def test_spectrogram_config_validates():
    with pytest.raises(ValueError, match="n_bins"):
        SpectrogramConfig(n_bins=512)
    with pytest.raises(ValueError, match="win_length < n_fft"):
        SpectrogramConfig(win_length=2048)


# -- losses -----------------------------------------------------------------------------------------

def random_specs(batch: int, seed: int, n_freq: int = 16, n_time: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 2, 2, n_freq, n_time, generator=g) * 2 - 1


def test_loss_is_l1_log_mag_plus_0_01_l1_phase_over_both_sources():
    pred, target = random_specs(3, 0), random_specs(3, 1)
    loss = separation_loss(pred, target)
    d = (pred - target).abs().mean(dim=(3, 4))  # (B, source, component)
    manual = d[:, ON, LOG_MAG] + 0.01 * d[:, ON, PHASE] + d[:, OFF, LOG_MAG] + 0.01 * d[:, OFF, PHASE]
    torch.testing.assert_close(loss.per_example, manual)
    assert loss.per_example.shape == (3,) and not loss.swapped.any()


def test_pit_loss_picks_the_better_assignment_per_example():
    target = random_specs(4, 2)
    noise = 0.05 * random_specs(4, 3)
    pred = target + noise
    pred[[0, 2]] = pred[[0, 2]].flip(1)  # examples 0 and 2 predicted in the other order
    fixed = separation_loss(pred, target)
    pit = separation_loss(pred, target, pit=True)
    assert pit.swapped.tolist() == [True, False, True, False]
    aligned = align_sources(pred, pit.swapped)
    torch.testing.assert_close(pit.per_example, separation_loss(aligned, target).per_example)
    assert torch.all(pit.per_example <= fixed.per_example)
    assert torch.all(pit.per_example < 0.06) and torch.all(fixed.per_example[[0, 2]] > 0.5)
    # the gradient flows through the chosen assignment only
    pred.requires_grad_(True)
    separation_loss(pred, target, pit=True).per_example.sum().backward()
    assert pred.grad.abs().sum() > 0


def test_on_off_error_is_in_db():
    target = random_specs(2, 4).clamp(-0.9, 0.9)
    pred = target.clone()
    pred[:, :, LOG_MAG] += 1 / 90  # +1 dB everywhere
    pred[:, :, PHASE] += 0.5  # ignored
    err = on_off_error_db(pred, target)
    torch.testing.assert_close(err.per_example, torch.full((2,), 2.0))  # 1 dB per source
    assert on_off_error_db(pred.flip(1), target, pit=True).swapped.all()


# -- mixtures -----------------------------------------------------------------------------------------

def two_clips(n: int = 8000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    on = rng.standard_normal((2, n)).astype(np.float32) * np.array([[0.3], [0.05]], np.float32)
    off = np.sin(np.arange(n) / 7.0)[None].repeat(2, 0).astype(np.float32) * 0.6
    return on, off


@pytest.mark.parametrize("snr", [-6.0, 0.0, 7.5])
def test_mixture_sums_exactly_and_hits_the_snr(snr):
    on, off = two_clips()
    m = mix(on, off, snr)
    assert m.mixture.dtype == m.on.dtype == m.off.dtype == np.float32
    assert np.array_equal(m.mixture, m.on + m.off)
    p_on = np.mean(m.on.astype(np.float64) ** 2, axis=-1)
    p_off = np.mean(m.off.astype(np.float64) ** 2, axis=-1)
    np.testing.assert_allclose(10 * np.log10(p_on / p_off), snr, atol=1e-4)  # per channel
    np.testing.assert_allclose(p_on + p_off, 2 * 0.1**2, rtol=1e-5)  # mixture level fixed
    if snr == 0:
        np.testing.assert_allclose(np.sqrt(p_on), 0.1, rtol=1e-5)  # the release: RMS 0.1 each


def test_mixture_over_all_channels_keeps_the_stereo_balance():
    on, off = two_clips()
    m = mix(on, off, 3.0, MixtureConfig(per_channel=False))
    np.testing.assert_allclose(m.on[0] / m.on[1], on[0] / on[1], rtol=1e-4)
    ratio = np.mean(m.on.astype(np.float64) ** 2) / np.mean(m.off.astype(np.float64) ** 2)
    np.testing.assert_allclose(10 * np.log10(ratio), 3.0, atol=1e-4)


def test_mixture_draws_are_deterministic_functions_of_seed_and_example():
    cfg = MixtureConfig(snr_db_range=(-5.0, 5.0))
    snrs = [draw_snr_db(7, i, cfg) for i in range(200)]
    assert snrs == [draw_snr_db(7, i, cfg) for i in range(200)]
    assert all(-5 <= s <= 5 for s in snrs) and np.std(snrs) > 2
    assert snrs != [draw_snr_db(8, i, cfg) for i in range(200)]
    assert draw_snr_db(7, 3) == 0.0  # the release's fixed 0 dB
    on, off = two_clips()
    a = make_mixture(on, off, seed=7, example_id=11, config=cfg)
    b = make_mixture(on, off, seed=7, example_id=11, config=cfg)
    assert a.snr_db == snrs[11] and np.array_equal(a.mixture, b.mixture)
    partners = [off_screen_index(7, i, 3, 5) for i in range(300)]
    assert partners == [off_screen_index(7, i, 3, 5) for i in range(300)]
    assert set(partners) == {0, 1, 2, 4}
    with pytest.raises(ValueError):
        off_screen_index(0, 0, 0, 1)
    with pytest.raises(ValueError, match="same shape"):
        mix(on, off[:, :100], 0.0)
    assert source_levels(0.0) == pytest.approx((0.1, 0.1))


# -- separation net ------------------------------------------------------------------------------------

def meta_net(name: str, **overrides) -> SeparationNet:
    with torch.device("meta"):
        return SeparationNet(get_preset(name, **overrides)).eval()


def tiny_inputs(cfg: SeparationNetConfig, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(batch, *cfg.video_shape, generator=g) * 2 - 1
    audio = 0.1 * torch.randn(batch, *cfg.audio_shape, generator=g)
    return video, audio


def test_paper_parameter_counts_match_the_release():
    full = meta_net("paper")
    assert abs(n_params(full) - 113.6e6) / 113.6e6 < 0.01, n_params(full)
    assert abs(n_params(full.unet) - 77.6e6) / 77.6e6 < 0.01, n_params(full.unet)
    audio_only = meta_net("paper", variant="audio-only")
    assert audio_only.shift is None
    assert abs(n_params(audio_only) - 67.0e6) / 67.0e6 < 0.01, n_params(audio_only)


def test_paper_shapes_follow_the_design_table():
    net = meta_net("paper")
    cfg = net.config
    assert (cfg.n_frames, cfg.n_samples, cfg.spec_frames, cfg.time_reduction) == (63, 44144, 128, 128)
    x = torch.empty(1, 2, 1024, 128, device="meta")
    sizes = []
    for i, layer in enumerate(net.unet.down):
        x = layer(x)
        sizes.append(tuple(x.shape[1:]))
        if i in (2, 3, 4):  # taps of 64, 128, 512 channels
            x = torch.cat([x, x.new_empty(1, {2: 64, 3: 128, 4: 512}[i], *x.shape[2:])], 1)
    # (channels, F, T): the design doc's (T x F) table transposed
    assert sizes == [(64, 512, 128), (128, 256, 128), (256, 128, 64), (512, 64, 32), (512, 32, 16),
                     (512, 16, 8), (512, 8, 4), (512, 4, 2), (512, 2, 1)]
    video, audio = torch.empty(2, 3, 63, 224, 224, device="meta"), torch.empty(2, 2, 44144, device="meta")
    assert [tuple(t.shape) for t in net.video_features(video, audio)] == [(2, 64, 16), (2, 128, 16), (2, 512, 8)]
    assert net(video, audio).shape == (2, 2, 2, 1024, 128)


@pytest.mark.parametrize("output", OUTPUTS)
def test_tiny_forward_shapes_range_and_gradients(output):
    torch.manual_seed(0)
    cfg = get_preset("tiny", output=output)
    net = SeparationNet(cfg)
    video, audio = tiny_inputs(cfg)
    out = net(video, audio)
    assert cfg.spec_frames == 13 and out.shape == (2, *cfg.output_shape) == (2, 2, 2, 1024, 13)
    assert torch.isfinite(out).all() and out[:, :, PHASE].abs().max() <= 1
    assert out[:, :, LOG_MAG].abs().max() <= (1 if output == "spectrogram" else 3)
    target = target_spectrograms(audio, audio.flip(0), cfg.spectrogram)
    assert target.shape == out.shape
    separation_loss(out, target).per_example.mean().backward()
    assert net.unet.down[0].conv.weight.grad.abs().sum() > 0
    assert net.shift.stem.conv1.conv.weight.grad.abs().sum() > 0  # fine-tuned jointly
    assert net.shift.audio.frontend.conv1_1.conv.weight.grad.abs().sum() > 0
    waves = synthesize_sources(out.detach(), cfg.n_samples, cfg.spectrogram)
    assert waves.shape == (2, 2, cfg.n_samples) and torch.isfinite(waves).all()


def test_mixture_residual_output_starts_from_the_mixture():
    """With the heads silent, the residual form returns the mixture's spectrogram for both
    sources, the mask form the mixture at half amplitude (-6 dB) for both; the release's form
    returns 0 (mid-range: -10 dB, zero phase) for both."""
    torch.manual_seed(0)
    video, audio = tiny_inputs(get_preset("tiny"))
    for output in OUTPUTS:
        cfg = get_preset("tiny", output=output)
        net = SeparationNet(cfg).eval()
        nn.init.zeros_(net.unet.head.conv.weight)
        nn.init.zeros_(net.unet.head.conv.bias)
        with torch.no_grad():
            out = net(video, audio)  # (B, 2, 2, F, T)
        if output == "spectrogram":
            assert out.abs().max() == 0
        else:
            mix = input_spectrogram(audio, cfg.spectrogram)[:, None].expand_as(out)  # (B, 2, 2, F, T)
            half = 40 * math.log10(0.5) / (cfg.spectrogram.db_max - cfg.spectrogram.db_min) if output == "mask" else 0
            torch.testing.assert_close(out[:, :, LOG_MAG], mix[:, :, LOG_MAG] + half, atol=1e-6, rtol=0)
            phase_error = torch.remainder(out[:, :, PHASE] - mix[:, :, PHASE] + 1, 2) - 1  # pi == -pi
            assert phase_error.abs().max() < 1e-6


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_builds_and_runs(variant):
    torch.manual_seed(0)
    cfg = get_preset("tiny", variant=variant)
    net = SeparationNet(cfg)
    video, audio = tiny_inputs(cfg)
    out = net(None if variant == "audio-only" else video, audio)
    assert out.shape == (2, *cfg.output_shape)
    assert cfg.pit_loss == (variant in ("full-pit", "audio-only"))
    assert cfg.init_from_shift == (variant not in ("scratch", "audio-only"))
    out.mean().backward()
    # every trainable parameter is used (DDP needs no unused-parameter search)
    assert [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None] == []
    if variant == "no-early-fusion":
        assert not net.shift.config.use_sound
        assert all(not p.requires_grad for p in net.shift.audio.parameters())


def test_single_frame_variant_ignores_all_but_the_middle_frame():
    torch.manual_seed(0)
    cfg = get_preset("tiny", variant="single-frame")
    net = SeparationNet(cfg).eval()
    video, audio = tiny_inputs(cfg)
    other = torch.rand(video.shape, generator=torch.Generator().manual_seed(9)) * 2 - 1
    mid = cfg.n_frames // 2
    other[:, :, mid] = video[:, :, mid]
    changed_mid = video.clone()
    changed_mid[:, :, mid] = other[:, :, mid - 1]
    with torch.no_grad():
        out = net(video, audio)
        assert torch.equal(out, net(other, audio))
        assert not torch.equal(out, net(changed_mid, audio))
        full = SeparationNet(get_preset("tiny")).eval()
        full.load_state_dict(net.state_dict())
        assert not torch.equal(full(video, audio), full(other, audio))


def test_mono_no_early_fusion_and_audio_only_see_what_they_should():
    torch.manual_seed(0)
    video, audio = tiny_inputs(get_preset("tiny"))
    swapped = audio.flip(1)  # left <-> right
    nets = {v: SeparationNet(get_preset("tiny", variant=v)).eval()
            for v in ("full", "mono", "no-early-fusion", "audio-only")}
    with torch.no_grad():
        assert torch.equal(nets["mono"](video, audio), nets["mono"](video, swapped))
        assert not torch.equal(nets["full"](video, audio), nets["full"](video, swapped))
        quiet = 0.5 * audio
        late = nets["no-early-fusion"]
        for a, b in zip(late.video_features(video, audio), late.video_features(video, quiet)):
            assert torch.equal(a, b)  # the video features carry no audio
        for a, b in zip(nets["full"].video_features(video, audio), nets["full"].video_features(video, quiet)):
            if not torch.equal(a, b):
                break
        else:
            raise AssertionError("the full net's fused features ignore the audio")
        assert torch.equal(nets["audio-only"](None, audio), nets["audio-only"](video, audio))


def test_config_round_trips_and_validates():
    cfg = get_preset("small", variant="mono")
    again = SeparationNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.spec_frames == 63 and again.time_reduction == 64
    with pytest.raises(ValueError, match="unknown separation variant"):
        get_preset("tiny", variant="i3d")
    with pytest.raises(ValueError, match="unknown separation-net preset"):
        get_preset("huge")
    with pytest.raises(ValueError, match="9 entries"):
        get_preset("tiny", widths=(4, 8))
    with pytest.raises(ValueError, match="no-early-fusion"):
        get_preset("tiny", shift=get_shift_preset("tiny", use_sound=False))


def test_load_shift_weights_from_a_pretrained_shift_net():
    torch.manual_seed(0)
    net = SeparationNet(get_preset("tiny"))
    shift = ShiftNet(get_shift_preset("tiny"))  # pretrained shift nets have no BN gamma
    left_at_init = net.load_shift_weights(shift.state_dict())
    assert left_at_init and all(k.endswith(".weight") for k in left_at_init)
    assert all(torch.equal(net.shift.state_dict()[k], v) for k, v in shift.state_dict().items())
    assert all(torch.all(net.shift.state_dict()[k] == 1) for k in left_at_init)
    with pytest.raises(ValueError, match="different shift-net widths"):
        net.load_shift_weights(ShiftNet(get_shift_preset("tiny", merge_width=24)).state_dict())
    with pytest.raises(ValueError, match="not a matching"):
        net.load_shift_weights({"stem.conv1.conv.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="audio-only"):
        SeparationNet(get_preset("tiny", variant="audio-only")).load_shift_weights(shift.state_dict())


def test_taps_are_resized_like_tf1_legacy_resize():
    x = torch.arange(4.0).view(1, 1, 4)
    assert resize_time(x, 8, 0.5).flatten().tolist() == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3]
    assert torch.equal(resize_time(x, 4, 1.0), x)


def test_mask_output_splits_the_mixture_and_its_video_gate_learns():
    """The mask form's two magnitudes add up to the mixture's in every bin, both keep the
    mixture's phase, and the per-frame video gate (zero at init) gets a gradient from the loss."""
    torch.manual_seed(0)
    cfg = get_preset("tiny", output="mask", loss="compressed")
    video, audio = tiny_inputs(cfg)
    net = SeparationNet(cfg)
    assert net.unet.gate.weight.abs().max() == 0
    nn.init.normal_(net.unet.head.conv.weight, 0.0, 0.5)
    out = net(video, audio)  # (B, 2, 2, F, T)
    mix = input_spectrogram(audio, cfg.spectrogram)  # (B, 2, F, T)
    amp = lambda x: 10 ** (unit_to_db(x, cfg.spectrogram) / 20)  # noqa: E731
    torch.testing.assert_close(amp(out[:, :, LOG_MAG]).sum(1), amp(mix[:, LOG_MAG]), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(out[:, :, PHASE], mix[:, None, PHASE].expand_as(out[:, :, PHASE]))
    target = target_spectrograms(audio, 0.5 * audio, cfg.spectrogram)
    separation_loss(out, target, kind="compressed", cfg=cfg.spectrogram).per_example.mean().backward()
    assert net.unet.gate.weight.grad.abs().sum() > 0
    assert net.shift.stem.conv1.conv.weight.grad.abs().sum() > 0
    assert SeparationNet(get_preset("tiny", output="mask", variant="audio-only")).unet.gate is None


def test_compressed_loss_zero_when_right_pit_and_finite_at_silence():
    torch.manual_seed(0)
    cfg = get_preset("tiny")
    on, off = 0.1 * torch.randn(3, 2, cfg.n_samples), 0.1 * torch.randn(3, 2, cfg.n_samples)
    off[0] = 0  # a silent source: -100 dB everywhere
    target = target_spectrograms(on, off, cfg.spectrogram)
    loss = lambda pred, **kw: separation_loss(pred, target, kind="compressed", cfg=cfg.spectrogram, **kw)  # noqa: E731
    assert loss(target).per_example.abs().max() == 0
    crossed = loss(target.flip(1), pit=True)
    assert crossed.swapped.all() and crossed.per_example.abs().max() == 0
    assert (loss(target.flip(1)).per_example > 0).all()
    pred = target.clone().requires_grad_(True)
    (loss(pred + 0.01).per_example.sum()).backward()
    assert torch.isfinite(pred.grad).all()
    # louder bins weigh more: the same 6 dB error costs more on the loud source than on a quiet one
    quiet = target_spectrograms(0.01 * on, off, cfg.spectrogram)
    shift = torch.zeros_like(target)
    shift[:, 0, 0] = 12 / (cfg.spectrogram.db_max - cfg.spectrogram.db_min)
    err = lambda t: separation_loss(t + shift, t, kind="compressed", cfg=cfg.spectrogram).per_example  # noqa: E731
    assert (err(target) > 1.5 * err(quiet)).all()
