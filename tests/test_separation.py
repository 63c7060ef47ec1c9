"""On/off-screen separation end to end: examples, training and resume, windowed inference with
masks and file outputs, the metrics and Table 2, and the command line (tiny preset, a few steps)."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from avscene import cli
from avscene.checkpoints import load_checkpoint, load_model, save_checkpoint
from avscene.constants import frame_to_sample
from avscene.data.mixtures import MixtureConfig
from avscene.data.separation_examples import SceneMixtures, SeparationSampling, VideoMixtures, separation_dataset
from avscene.data.shift_pairs import frames_to_video
from avscene.data.videos import index_videos
from avscene.infer.separate import (MASK_GREY, SeparateOptions, last_window_start, model_box, output_length,
                                    parse_mask, separate_arrays, separate_file, write_separation)
from avscene.media import probe, read_clip, write_video
from avscene.evaluate.separation import MIXTURE, evaluate_separation
from avscene.metrics.separation import bss_eval, score_batch, si_sdr
from avscene.models import ShiftNet, SeparationNet
from avscene.models import get_preset as get_shift_preset
from avscene.models.separation_net import SeparationNetConfig, get_preset, synthesize_sources, target_spectrograms
from avscene.synth import SceneConfig, load_ground_truth, write_dataset
from avscene.train.loop import TrainConfig, fit
from avscene.train.separation import make_separation_task
from avscene.windows import crossfade_weights, plan_windows

FPS = Fraction(30000, 1001)


@pytest.fixture(scope="module")
def scene_set(tmp_path_factory) -> Path:
    """4 short synthetic separation scenes with stems (2 'within', 2 'across' voice pairings)."""
    root = tmp_path_factory.mktemp("sep_scenes") / "scenes"
    write_dataset(root, 4, 0, config=SceneConfig(task="separation", duration_s=1.5, width=40, height=40),
                  progress=False)
    return root


@pytest.fixture(scope="module")
def shift_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    net = ShiftNet(get_shift_preset("tiny"))
    path = tmp_path_factory.mktemp("shift") / "checkpoint.pt"
    return save_checkpoint(path, {"task": "shift", "model_config": net.config.to_dict(), "model": net.state_dict()})


@pytest.fixture(scope="module")
def trained_ckpt(tmp_path_factory, scene_set, shift_ckpt) -> Path:
    """A tiny separation net trained for 2 steps through the command line (the demo's mask output
    and compressed loss, so that every command downstream meets them)."""
    out = tmp_path_factory.mktemp("sep_run")
    rc = cli.main(["train", "separation", "--data", str(scene_set), "--init", str(shift_ckpt), "--preset", "tiny",
                   "--output", "mask", "--loss", "compressed",
                   "--out", str(out), "--steps", "2", "--batch-size", "2", "--workers", "0", "--n-val", "2",
                   "--val-every", "2", "--log-every", "1", "--device", "cpu", "--quiet"])
    assert rc == 0
    config = load_checkpoint(out / "checkpoint.pt")["model_config"]
    assert (config["output"], config["loss"]) == ("mask", "compressed")
    return out / "checkpoint.pt"


def _write_av(path: Path, *, seconds: float, size=(48, 64), sample_rate=44100, channels=2, audio=True, seed=0):
    rng = np.random.default_rng(seed)
    n_frames = round(seconds * FPS)
    frames = rng.integers(0, 256, (n_frames, *size, 3), dtype=np.uint8)
    sound = None
    if audio:
        sound = (0.1 * rng.standard_normal((frame_to_sample(n_frames, FPS, sample_rate), channels))).astype(np.float32)
    return write_video(path, frames, FPS, sound, sample_rate if audio else None)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))


# -- examples -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tone_videos(tmp_path_factory) -> tuple[Path, dict[str, float]]:
    """3 videos of 2 s, each with its own tone (300, 500, 700 Hz; left channel louder) under a
    slow tremolo, so a window's source and position can be told from its audio."""
    folder = tmp_path_factory.mktemp("tones")
    tones = {}
    for k, freq in enumerate((300.0, 500.0, 700.0)):
        n_frames = 60
        t = np.arange(frame_to_sample(n_frames, FPS, 22050)) / 22050
        wave = 0.2 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 1.3 * t + k))
        audio = np.stack([wave, 0.5 * wave], 1).astype(np.float32)
        frames = np.full((n_frames, 40, 40, 3), 40 + 80 * k, np.uint8)
        write_video(folder / f"tone{k}.mp4", frames, FPS, audio, 22050)
        tones[f"tone{k}.mp4"] = freq
    return folder, tones


def _peak_hz(x: np.ndarray, rate: int = 21000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def test_video_mixture_is_own_sound_plus_another_videos_and_sums_exactly(tone_videos):
    folder, tones = tone_videos
    cfg = get_preset("tiny")
    mixture_cfg = MixtureConfig(snr_db_range=(-4.0, 4.0))
    sampling = SeparationSampling.for_model(cfg, augment=False, mixture=mixture_cfg)
    index = index_videos(folder, min_duration_s=1.0)
    data = VideoMixtures(index, sampling, seed=3)
    own_videos = set()
    for i in range(6):
        ex = data[i]
        mix, on, off = (ex[k].numpy() for k in ("mixture", "on", "off"))
        assert mix.shape == on.shape == off.shape == (2, sampling.n_samples)
        assert ex["frames"].shape == (cfg.n_frames, 32, 32, 3)
        assert np.array_equal(mix, on + off)  # exactly, in float32
        p_on, p_off = (np.mean(x.astype(np.float64) ** 2, axis=1) for x in (on, off))
        np.testing.assert_allclose(10 * np.log10(p_on / p_off), ex["snr_db"], atol=1e-3)
        assert -4 <= ex["snr_db"] <= 4
        # on-screen = the clip's own audio at its window (levelled); off-screen = another video's
        name = Path(ex["source"]).name
        own_videos.add(name)
        a = frame_to_sample(ex["start_frame"], FPS, 21000)
        own = read_clip(ex["source"], sample_rate=21000, channels=2, video=False).audio[a : a + sampling.n_samples].T
        for c in range(2):
            assert _corr(on[c], own[c]) > 0.99
        assert abs(_peak_hz(on[0]) - tones[name]) < 10
        assert min(abs(_peak_hz(off[0]) - f) for n, f in tones.items() if n != name) < 10
    assert len(own_videos) == 3  # every video is on-screen in an epoch of 3 examples
    again = VideoMixtures(index, sampling, seed=3)[2]
    assert all(torch.equal(again[k], data[2][k]) for k in ("frames", "mixture", "on", "off"))


def test_scene_examples_use_the_ground_truth_stems(scene_set):
    cfg = get_preset("tiny")
    sampling = SeparationSampling.for_model(cfg, augment=True)
    held_out = SceneMixtures(scene_set, sampling, train=False, clips_per_scene=2)
    assert set(held_out.groups) == {"within", "across"}
    ex = held_out[0]
    scene = held_out.clips[0][0]
    truth = load_ground_truth(Path(scene_set) / held_out.scenes[scene]["stem"])
    onscreen = np.array([s["onscreen"] for s in truth["source_info"]])
    a = frame_to_sample(ex["start_frame"], FPS, 21000)
    on_true = truth["sources"][onscreen].sum(0)[a : a + sampling.n_samples].T
    off_true = (truth["sources"][~onscreen].sum(0) + truth["noise"])[a : a + sampling.n_samples].T
    gain = float(ex["on"][0, 100] / on_true[0, 100])
    np.testing.assert_allclose(ex["on"].numpy(), on_true * gain, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ex["off"].numpy(), off_true * gain, rtol=1e-4, atol=1e-6)
    assert torch.equal(ex["mixture"], ex["on"] + ex["off"])
    np.testing.assert_allclose(float(ex["mixture"].double().pow(2).mean().sqrt()), 0.1 * np.sqrt(2), rtol=1e-4)
    assert ex["group"] == held_out.scenes[scene]["voice_pairing"]
    train = SceneMixtures(scene_set, sampling, train=True, seed=1)
    t = train[7]
    assert torch.equal(t["mixture"], t["on"] + t["off"]) and t["frames"].shape == (8, 32, 32, 3)
    assert torch.equal(train[7]["mixture"], t["mixture"])  # a function of (seed, id)


# -- training -------------------------------------------------------------------------------------------


def _train_cfg(out: Path, steps: int) -> TrainConfig:
    return TrainConfig(out_dir=str(out), steps=steps, global_batch=2, micro_batch=2, optimizer="adam", lr=1e-3,
                       grad_clip=10.0, num_workers=0, log_every=1, val_every=100, ckpt_every=1, device="cpu",
                       progress=False)


def test_fit_checkpoint_loads_and_resumes_exactly(tmp_path, scene_set, shift_ckpt):
    cfg = get_preset("tiny", variant="full-pit")
    task = make_separation_task(scene_set, cfg, init=shift_ckpt, snr_db=(-3.0, 3.0), n_val=2, seed=5)
    shift_state = load_checkpoint(shift_ckpt)["model"]
    built = task.build_model()
    assert all(torch.equal(built.shift.state_dict()[k], v) for k, v in shift_state.items())  # init honoured
    straight = fit(task, _train_cfg(tmp_path / "a", 3))
    fit(task, _train_cfg(tmp_path / "b", 2))
    resumed = fit(task, _train_cfg(tmp_path / "b", 3))
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert a["step"] == b["step"] == 3
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    model = load_model(resumed)
    assert isinstance(model, SeparationNet) and model.config == cfg and not model.training
    assert a["model_config"]["shift_init"] == str(shift_ckpt)
    with pytest.warns(UserWarning, match="not used"):
        make_separation_task(scene_set, get_preset("tiny", variant="scratch"), init=shift_ckpt, n_val=1)


def test_a_frozen_shift_net_keeps_its_weights_while_the_u_net_trains(tmp_path, scene_set, shift_ckpt):
    cfg = get_preset("tiny", variant="full", train_shift=False)
    assert SeparationNetConfig.from_dict(cfg.to_dict()) == cfg
    assert SeparationNetConfig.from_dict({k: v for k, v in cfg.to_dict().items() if k != "train_shift"}).train_shift
    task = make_separation_task(scene_set, cfg, init=shift_ckpt, n_val=2, seed=1)
    assert not any(p.requires_grad for p in task.build_model().shift.parameters())
    trained = load_checkpoint(fit(task, _train_cfg(tmp_path / "frozen", 2)))["model"]
    start = load_checkpoint(shift_ckpt)["model"]
    weights = [k for k in start if "running" not in k and "num_batches" not in k]  # BN statistics still adapt
    assert weights and all(torch.equal(trained[f"shift.{k}"], start[k]) for k in weights)
    optimizer = load_checkpoint(tmp_path / "frozen" / "checkpoint.pt")["optimizer"]["state"]
    assert len(optimizer) == sum(p.requires_grad for p in task.build_model().parameters())  # the U-Net's alone


# -- inference ------------------------------------------------------------------------------------------


def _tiny_net(variant: str = "full", seed: int = 0) -> SeparationNet:
    torch.manual_seed(seed)
    return SeparationNet(get_preset("tiny", variant=variant)).eval()


def test_long_input_equals_the_windowed_reference_at_the_seams():
    net = _tiny_net()
    cfg = net.config
    rng = np.random.default_rng(0)
    n_total = 20000
    frames = rng.integers(0, 256, (29, 32, 32, 3), dtype=np.uint8)
    audio = (rng.standard_normal((n_total, 2)) * np.linspace(0.02, 0.3, n_total)[:, None]).astype(np.float32)
    result = separate_arrays(net, frames, audio, SeparateOptions(batch_size=3))
    # the reference: one window at a time, levelled, cross-faded with triangular weights
    length = output_length(net)
    hop = cfg.n_frames // 2
    starts = plan_windows(last_window_start(n_total, net) + cfg.n_frames, cfg.n_frames, hop, align="start")
    assert starts[0] == 0 and all(0 < b - a <= hop for a, b in zip(starts, starts[1:]))
    ends = [frame_to_sample(f, FPS, 21000) + length for f in starts]
    assert ends[-1] >= n_total > ends[-2]  # the last window reaches the end, the one before does not
    acc, wsum = np.zeros((2, n_total)), np.zeros(n_total)
    for f in starts:
        a = frame_to_sample(f, FPS, 21000)
        seg = np.zeros((cfg.n_samples, 2), np.float32)
        real = audio[a : a + cfg.n_samples]
        seg[: len(real)] = real
        gain = 0.1 * np.sqrt(2) / max(float(np.sqrt(np.mean(real.astype(np.float64) ** 2))), 1e-4)
        clip = frames[np.minimum(np.arange(f, f + cfg.n_frames), len(frames) - 1)]
        mix = torch.from_numpy(seg.T[None] * np.float32(gain))  # (1, C, N)
        with torch.no_grad():
            pred = net(frames_to_video(torch.from_numpy(clip)[None]), mix)
        y = synthesize_sources(pred, length, cfg.spectrogram, mixture=mix)[0].double().numpy() / gain  # default phase
        end = min(a + length, n_total)
        w = crossfade_weights(length)[: end - a]
        acc[:, a:end] += y[:, : end - a] * w
        wsum[a:end] += w
    reference = acc / wsum
    assert result.on.shape == result.off.shape == (n_total,) and result.sample_rate == 21000
    np.testing.assert_allclose(result.on, reference[0], atol=2e-5)
    np.testing.assert_allclose(result.off, reference[1], atol=2e-5)
    for f in starts[1:]:  # the seams: where a window starts and where the previous one ends
        a = frame_to_sample(f, FPS, 21000)
        for s in (a, a + 1, min(a + length // 2, n_total - 1)):
            assert abs(result.on[s] - reference[0, s]) < 2e-5
    assert np.isfinite(result.on).all() and np.abs(result.on).max() > 0


def test_mask_greys_out_the_region_the_model_sees(tmp_path):
    path = _write_av(tmp_path / "wide.mp4", seconds=1.0, size=(48, 64))
    net = _tiny_net()
    seen = []
    net.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    grey = MASK_GREY * 2 / 255 - 1
    # 64 x 48 -> cover 43 x 32 -> centre crop 32 x 32 from x = 5: the left half (x < 32) is x < 16.5
    assert model_box((0, 0, 32, 48), (48, 64), 32, "crop") == (0, 0, 17, 32)
    result = separate_file(net, path, SeparateOptions(mask=parse_mask("left")))
    assert result.mask_box == (0, 0, 17, 32) and seen
    for video in seen:  # (B, 3, T, H, W)
        assert torch.allclose(video[..., :17], torch.full_like(video[..., :17], grey), atol=1e-6)
        assert (video[..., 17:] - grey).abs().amax() > 0.5
    seen.clear()
    frames = np.random.default_rng(1).integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    separate_arrays(net, frames, np.zeros((8000, 2), np.float32), SeparateOptions(mask=parse_mask("4,6,20,30")))
    video = torch.cat(seen)
    assert torch.allclose(video[..., 6:30, 4:20], torch.full_like(video[..., 6:30, 4:20], grey), atol=1e-6)
    assert (video[..., :6, :] - grey).abs().amax() > 0.5 and (video[..., 20:] - grey).abs().amax() > 0.5
    with pytest.raises(ValueError, match="X0,Y0,X1,Y1"):
        parse_mask("top")


def test_outputs_have_the_inputs_rate_and_duration(tmp_path):
    path = _write_av(tmp_path / "talk.mp4", seconds=2.5, sample_rate=44100)
    original = read_clip(path, video=False)
    result = separate_file(_tiny_net(), path, SeparateOptions(batch_size=4))
    assert result.sample_rate == 44100 and len(result.on) == original.n_samples
    written = write_separation(result, tmp_path / "out")
    assert set(written) == {"on_wav", "off_wav", "on_mp4", "off_mp4", "spectrogram", "json"}
    for kind in ("on", "off"):
        info = sf.info(str(written[f"{kind}_wav"]))
        assert info.samplerate == 44100 and info.frames == original.n_samples
        assert written[f"{kind}_wav"].name == f"talk_{kind}.wav"
        mp4 = probe(written[f"{kind}_mp4"])
        src = probe(path)
        assert mp4.has_video and mp4.has_audio and mp4.fps == src.fps and mp4.n_frames == src.n_frames
        assert mp4.sample_rate == 44100 and abs(mp4.duration_s - src.duration_s) < 0.05
    assert written["spectrogram"].stat().st_size > 1000


def test_pit_outputs_keep_one_order_across_windows():
    """A PIT model may output the sources in either order per window; stitching must not mix them.
    A net that returns the mixture's own spectrogram as 'source 1' and silence as 'source 2' in
    alternating order per window still yields the mixture in one output and silence in the other."""
    net = _tiny_net("audio-only")

    class Alternating(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config, self.anchor, self.calls = net.config, torch.nn.Parameter(torch.zeros(1)), 0

        def forward(self, video, audio):
            from avscene.models.separation_net import input_spectrogram

            spec = input_spectrogram(audio, self.config.spectrogram)  # (B, 2, F, T)
            silent = torch.stack([torch.full_like(spec[:, 0], -1.0), spec[:, 1]], 1)
            pairs = []
            for i in range(len(audio)):
                self.calls += 1
                pair = [spec[i], silent[i]] if self.calls % 2 else [silent[i], spec[i]]
                pairs.append(torch.stack(pair))
            return torch.stack(pairs)

    audio = (0.1 * np.random.default_rng(2).standard_normal((16000, 2))).astype(np.float32)
    result = separate_arrays(Alternating(), None, audio, SeparateOptions(batch_size=2))
    assert not result.ordered
    loud, quiet = sorted([result.on, result.off], key=lambda x: -np.abs(x).max())
    assert np.abs(quiet).max() < 1e-6
    mono = audio.mean(1)
    assert _corr(loud[2000:14000], mono[2000:14000]) > 0.99


# -- metrics ---------------------------------------------------------------------------------------------


def test_metrics_perfect_estimates_and_the_mixture_at_0_db():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 2, 8000))
    ref /= np.sqrt((ref**2).mean(-1, keepdims=True))  # 0 dB between the two sources
    sdr, sir, sar = bss_eval(ref, ref.copy())
    assert sdr.shape == (2, 2) and (sdr > 60).all() and (sir > 60).all()
    assert (si_sdr(ref, ref) > 60).all()
    mix = ref.sum(1, keepdims=True).repeat(2, 1)
    sdr, sir, _ = bss_eval(ref, mix)
    assert np.abs(sdr).max() < 1.0 and np.abs(sir).max() < 1.0
    assert float(si_sdr(ref, mix).abs().max()) < 0.5
    # the whole chain: the true spectrograms as the prediction score ~0 dB on/off error, high SDR
    cfg = get_preset("tiny")
    on = torch.tensor(0.1 * rng.standard_normal((3, 2, cfg.n_samples)), dtype=torch.float32)
    off = torch.tensor(0.1 * rng.standard_normal((3, 2, cfg.n_samples)), dtype=torch.float32)
    batch = {"mixture": on + off, "on": on, "off": off, "group": ["within"] * 3}
    perfect = score_batch(target_spectrograms(on, off, cfg.spectrogram), batch, cfg, phase="pred")
    baseline = score_batch(None, batch, cfg)
    assert all(r["on_off_db"] < 1e-4 and r["sdr"] > 30 and r["si_sdr"] > 30 for r in perfect)
    assert all(abs(r["sdr"]) < 1.5 and r["on_off_db"] > 3 for r in baseline)
    # true magnitudes with the mixture's phase (the default): better than the mixture, not perfect
    # (white noise at 0 dB is the hardest case for a borrowed phase: ~2.7 dB against ~0.2)
    magnitudes = score_batch(target_spectrograms(on, off, cfg.spectrogram), batch, cfg)
    assert all(m["on_off_db"] < 1e-4 and b["sdr"] + 1.5 < m["sdr"] < 30 for m, b in zip(magnitudes, baseline))
    crossed = score_batch(target_spectrograms(off, on, cfg.spectrogram), batch, cfg, pit=True, phase="pred")
    assert all(r["swapped"] and r["sdr"] > 30 for r in crossed)  # PIT: the better assignment


def test_evaluate_separation_gives_table_2_by_voice_pairing(tmp_path, scene_set):
    cfg = get_preset("tiny")
    data = separation_dataset(scene_set, cfg, train=False, clips_per_scene=2)
    table = evaluate_separation({"full": _tiny_net(), "u-net PIT": _tiny_net("audio-only")}, data, batch_size=4)
    assert table.models == ("full", "u-net PIT", MIXTURE)
    assert table.groups == ("all", "within", "across")
    n = table.summary["full"]["all"]["n"]
    assert n == len(data) and n == table.summary["full"]["within"]["n"] + table.summary["full"]["across"]["n"]
    assert abs(table.value(MIXTURE, "sdr")) < 6 and table.info["models"]["u-net PIT"]["pit"]
    written = table.write(tmp_path)
    assert json.loads(written["json"].read_text())["summary"]["full"]["within"]["n"] > 0
    header = written["csv"].read_text().splitlines()[0]
    assert header.startswith("model,variant,all_n,all_on_off_db,all_sdr,all_sir,all_sar,all_si_sdr")
    md = written["md"].read_text()
    assert "| mixture as estimate |" in md and "Within SDR" in md and "Across On/off" in md


# -- command line -------------------------------------------------------------------------------------


def test_cli_train_separate_and_eval(tmp_path, trained_ckpt, scene_set, capsys):
    model = load_model(trained_ckpt)
    assert isinstance(model, SeparationNet) and model.config.variant == "full"
    last = json.loads((trained_ckpt.parent / "log.json").read_text())[-1]
    assert last["step"] == 2 and {"loss", "on_off_db", "val_loss", "val_on_off_db", "val_si_sdr"} <= set(last)
    video = _write_av(tmp_path / "clip.mp4", seconds=1.2, sample_rate=48000, channels=1)
    silent = _write_av(tmp_path / "silent.mp4", seconds=1.0, audio=False)
    rc = cli.main(["separate", str(video), str(silent), "-o", str(tmp_path / "sep"), "--model", str(trained_ckpt),
                   "--mask", "right", "--device", "cpu", "--no-plot"])
    captured = capsys.readouterr()
    assert rc == cli.EXIT_SOME_FAILED
    assert "silent.mp4: has no audio stream" in captured.err
    assert sf.info(str(tmp_path / "sep" / "clip_on.wav")).samplerate == 48000
    assert (tmp_path / "sep" / "clip_off.mp4").exists() and not (tmp_path / "sep" / "silent_on.wav").exists()
    rc = cli.main(["eval", "separation", "--data", str(scene_set), "--model", f"full={trained_ckpt}",
                   "--out", str(tmp_path / "eval"), "--clips-per-scene", "1", "--device", "cpu", "--quiet"])
    assert rc == 0
    assert "| full |" in capsys.readouterr().out
    assert (tmp_path / "eval" / "separation_eval.csv").exists()
    assert cli.main(["separate", str(silent), "-o", str(tmp_path / "x"), "--model", str(tmp_path / "none.pt")]) == 2


def test_bss_eval_survives_torch_set_num_threads():
    """torch 2.13 + MKL: after set_num_threads(2), batched float64 solves of 512 x 512 systems
    fail; bss_eval must still give the metrics (a fresh process: the thread state is global)."""
    code = ("import numpy as np, torch; torch.set_num_threads(2); "
            "from avscene.metrics.separation import bss_eval; "
            "ref = np.random.default_rng(0).standard_normal((2, 2, 8000)); "
            "sdr, _, _ = bss_eval(ref, ref + 0.5 * np.random.default_rng(1).standard_normal(ref.shape)); "
            "print(sdr.shape, bool((np.abs(sdr - 6.0) < 1.0).all()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "True", out.stdout
