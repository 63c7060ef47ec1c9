"""The main job, ``avscene demo``: the whole system end to end on the synthetic world.

Steps, each with a progress bar and a one-line result, each reused when the demo runs again
(a step that finished left ``<out>/<step>/step.json``; training steps resume from checkpoints):

1. ``data``: synthetic sets for every task (the ``pulses`` sync world, localize, separation and
   action scenes) and a probe of the real clips given with ``clips``.
2. ``shift``: self-supervised sync pretraining of a small shift network.
3. ``sync``: offset recovery by the sync scan on copies with known offsets, a calibrated
   confidence (stored in the checkpoint), and a scan curve.
4. ``localize``: the pointing game on held-out scenes, a class-activation-map video (with its
   sound) of a held-out scene with silent look-alikes, and maps of the real clips by the model
   store's paper network when it holds one, else by the demo's own (with a caveat on the page).
5. ``separation``: the demo's on/off-screen separator (:data:`SEPARATION_PRESET`,
   :data:`SEPARATION_RECIPE`) on the shift network's features, trained on the pulse world's scenes
   (:data:`SEPARATION_WORLD`), scored on held-out mixtures, and one mixture separated into audio
   players and spectrograms.
6. ``action``: a small action classifier fine-tuned from the shift network, with its confusion
   matrix.

Each step's ``headline`` is its figure on held-out synthetic data against its baseline (chance,
a random guess, or the unprocessed mixture); the page shows the gains in a table at the top.
Then ``report.html`` (:mod:`avscene.report.page`) and ``summary.json`` with the minutes of each
stage and the machine. ``minutes`` scales every budget (15: about 15 minutes on a 2-core CPU);
the numbers are those of this small budget, and the benchmarks under ``benchmarks/`` give the
figures of larger runs (``benchmarks/demo.py`` records the demo's own).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from avscene.constants import frame_to_sample
from avscene.data.videos import find_videos
from avscene.files import write_json
from avscene.media import MediaError, probe
from avscene.models import get_preset
from avscene.report.page import rel_path, write_report
from avscene.store import default_model, demo_checkpoint, models_dir
from avscene.synth import ACTION_CLASSES, SceneConfig, ensure_dataset, generate_scene
from avscene.synth.worlds import SYNTHETIC_SYNC_WORLDS

#: Budgets at ``minutes=15`` (scaled linearly; never below the floor in brackets). The separator
#: gets the largest share after the shift network: it is the capability that needs the most steps
#: to beat its baseline (the unprocessed mixture) by a clear margin.
BUDGET = {"sync_scenes": (120, 12), "shift_steps": (440, 12), "offset_clips": (13, 3), "pointing_scenes": (16, 2),
          "separation_scenes": (96, 6), "separation_steps": (400, 6), "action_scenes": (60, 12),
          "action_steps": (120, 6)}

#: The demo's separator preset per shift preset: ``small-lite`` is ``small`` on half the
#: frequency bins, so that it trains in the demo's minutes.
SEPARATION_PRESET = {"small": "small-lite", "tiny": "tiny"}

#: The demo's separator recipe (``avscene train separation`` keeps the release's Adam at 1e-4):
#: Adam at 1e-3 (ten times the release's lr; benchmarks/results/separation_lr1e3*.json), decayed
#: to zero by a cosine over the demo's few hundred steps.
SEPARATION_RECIPE = {"optimizer": "adam", "lr": 1e-3, "grad_clip": 10.0, "global_batch": 8, "micro_batch": 8,
                     "schedule": "cosine"}

#: The demo's separation world (:data:`avscene.synth.worlds.SYNTHETIC_SEPARATION_WORLDS`): the
#: pulsing objects its shift network learnt to sync, their bursts against off-screen bursts. On
#: the talking-face world the shift network's features know nothing of mouths, and the separator
#: needs thousands of steps (benchmarks/separation.py) where the demo has hundreds.
SEPARATION_WORLD = "pulses"

#: Whether the demo's separator fine-tunes its shift network. It does not: the shift network
#: already knows the pulses of the separation world. In 400 steps on three demo shift networks the
#: U-Net alone gained +3.5, +3.8 and +4.3 dB where fine-tuning both gained +2.7, +2.3 and +4.4
#: (benchmarks/separation_recipes.py), at 0.52-0.57 s per step instead of 0.71-0.75.
SEPARATION_TRAINS_SHIFT = False

#: The gain in on-screen SDR over the unprocessed mixture the demo's separator must show (dB).
SEPARATION_TARGET_DB = 3.0


def _budget(name: str, scale: float) -> int:
    full, floor = BUDGET[name]
    return max(floor, round(full * scale))


def _headline(metric: str, value: float, baseline: float, baseline_name: str, unit: str = "fraction",
              target: float | None = None) -> dict:
    """A step's result against its baseline (:class:`avscene.report.page.Headline`)."""
    out = {"metric": metric, "value": round(float(value), 4), "baseline": round(float(baseline), 4),
           "baseline_name": baseline_name, "unit": unit}
    return out if target is None else {**out, "target": target}


def pointing_game(model, scenes) -> dict:
    """Where the demo's shift network points, on held-out ``localize`` scenes (one sounding
    object, silent look-alikes): per model window (``model.config.n_frames`` frames), the peak of
    the time-averaged |CAM| over the whole picture is a hit when it falls in the sounding object's
    box over the window (the union of its boxes: a pulsing object grows while it sounds). Chance
    is the share of the picture that box covers (a peak dropped at random). Returns the hit rate,
    that chance and the number of windows."""
    from avscene.infer.localize import cam_clip, cam_to_frame

    cfg = model.config
    n = cfg.n_frames
    hits, chance = [], []
    for scene in scenes:
        target = next(o for o in scene.objects if o.sounding)
        height, width = scene.frames.shape[1:3]
        for t in range(0, scene.n_frames - n + 1, n):
            s0, s1 = (frame_to_sample(k, cfg.fps, cfg.sample_rate) for k in (t, t + n))
            cam = cam_clip(model, scene.frames[t : t + n], scene.audio[s0:s1], absolute=True)  # (T', h, w)
            heat = cam_to_frame(cam.mean(0), (height, width), cfg, fit="squash", size=height)  # (H, W)
            y, x = np.unravel_index(np.nanargmax(heat), heat.shape)
            boxes = target.boxes[t : t + n]  # (n, 4) x0, y0, x1, y1 pixel edges
            x0, y0 = np.clip(boxes[:, :2].min(0), 0, None)
            x1, y1 = np.minimum(boxes[:, 2:].max(0), (width, height))
            hits.append(bool(x0 <= x + 0.5 <= x1 and y0 <= y + 0.5 <= y1))
            chance.append(float((x1 - x0) * (y1 - y0) / (width * height)))
    return {"pointing": float(np.mean(hits)), "chance": float(np.mean(chance)), "windows": len(hits)}


def _describe_set(manifest_path: Path) -> str:
    manifest = json.loads(manifest_path.read_text())
    scenes = manifest["scenes"]
    duration = sum(s.get("duration_s", 0.0) for s in scenes)
    line = f"{len(scenes)} scenes, {duration:.0f} s of video"
    labels = Counter(s.get("label_name") for s in scenes if s.get("label_name"))
    if labels:
        line += f", classes: {', '.join(f'{k} x{v}' for k, v in sorted(labels.items()))}"
    return line


def machine() -> dict:
    """What the demo ran on: its timings only mean something with this. ``load_average`` (1, 5 and
    15 minutes, at the end of the run): above the CPU count, other work shared the machine and
    the minutes are longer than the demo alone takes."""
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "processor": platform.processor(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


class Demo:
    """One demo run in ``out``; :meth:`run` does the steps that are not done yet."""

    def __init__(self, out: str | Path, *, minutes: float = 15.0, clips: str | Path | None = None, seed: int = 0,
                 preset: str = "small") -> None:
        self.out = Path(out)
        self.scale = max(0.05, minutes / 15.0)
        self.clips = Path(clips) if clips is not None else None
        self.seed = seed
        self.preset = preset
        self.shift_cfg = get_preset(preset)
        self.summary: dict = {"title": "avscene demo", "steps": [], "synthetic": {}, "real_clips": []}
        self.reused: list[str] = []

    # -- plumbing ------------------------------------------------------------------------------------

    def rel(self, path: str | Path) -> str:
        return rel_path(self.out, path)

    def step(self, name: str, title: str, body: Callable[[Path], dict]) -> dict:
        """Run ``body(step_dir) -> Step fields`` unless ``step.json`` says it already finished."""
        folder = self.out / name
        done = folder / "step.json"
        if done.exists():
            record = json.loads(done.read_text())
            self.reused.append(name)
            print(f"[{name}] reused: {record['result']}")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            print(f"[{name}] {title} ...", flush=True)
            record = {"name": name, "title": title, **body(folder)}
            record.setdefault("metrics", {})["minutes"] = round((time.perf_counter() - t0) / 60, 2)
            write_json(done, record)
            print(f"[{name}] {record['result']}", flush=True)
        self.summary["steps"].append(record)
        return record

    def run(self) -> Path:
        t0 = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(self.seed)
        self.make_data()
        data_minutes = (time.perf_counter() - t0) / 60
        self.step("shift", "Self-supervised audio-visual sync pretraining", self.pretrain)
        self.step("sync", "Is the sound in sync? Held-out accuracy and offset recovery", self.evaluate_sync)
        localize = self.step("localize", "Where is the sound? Class activation maps", self.localize)
        self.step("separation", "On-screen / off-screen source separation", self.separate)
        self.step("action", "Action recognition fine-tuned from the sync network", self.classify)
        # the real videos' maps have their own section of the page, under the network that made them
        self.summary["real_clip_maps"] = localize.pop("real_clip_maps", None)
        self.summary["run"] = {
            "minutes": {"data": round(data_minutes, 2),
                        **{s["name"]: s["metrics"].get("minutes") for s in self.summary["steps"]}},
            "wall_minutes": round((time.perf_counter() - t0) / 60, 2), "reused": self.reused, "machine": machine(),
        }
        write_json(self.out / "summary.json", self.summary)
        print(f"[demo] {self.summary['run']['wall_minutes']:.1f} minutes", flush=True)
        return write_report(self.out)

    @property
    def shift_checkpoint(self) -> Path:
        return demo_checkpoint("shift", self.out)

    def _train_config(self, folder: Path, steps: int, **overrides):
        from avscene.train.loop import TrainConfig

        base = dict(out_dir=str(folder), steps=steps, global_batch=16, micro_batch=16, optimizer="sgd", lr=1e-2,
                    schedule="cosine", val_every=max(10, steps // 6), ckpt_every=max(10, steps // 6),
                    log_every=10, num_workers=1, seed=self.seed, resume=True)
        base.update(overrides)
        return TrainConfig(**base)

    # -- steps ----------------------------------------------------------------------------------------

    def make_data(self) -> None:
        from avscene.synth.worlds import (write_synthetic_action_data, write_synthetic_separation_data,
                                          write_synthetic_sync_data)

        cfg, s, root = self.shift_cfg, self.scale, self.out / "synthetic"
        rates = dict(fps=cfg.fps, sample_rate=cfg.sample_rate)
        pulses = SYNTHETIC_SYNC_WORLDS["pulses"]
        self.sync_train, self.sync_val = write_synthetic_sync_data(root / "sync", _budget("sync_scenes", s), self.seed,
                                                                   cfg, world="pulses")
        sets = {
            "offset": (_budget("offset_clips", s), 30_000, SceneConfig(task="sync", duration_s=6.0, **rates, **pulses)),
            "localize": (2, 40_000, SceneConfig(
                task="localize", duration_s=4.0, **rates, **{k: v for k, v in pulses.items() if k != "n_objects"})),
        }
        for name, (n, seed, config) in sets.items():
            ensure_dataset(root / name, n, self.seed + seed, config=config)
        k = len(ACTION_CLASSES)
        per_class = max(2, round(_budget("action_scenes", s) / k))
        write_synthetic_action_data(root, cfg, action_train=(k * per_class, self.seed + 50_000),
                                    action_test=(k * max(1, per_class // 3), self.seed + 60_000))
        n_sep = _budget("separation_scenes", s)
        sep_cfg = self.separation_config()
        sep = write_synthetic_separation_data(root / "separation", sep_cfg, world=SEPARATION_WORLD,
                                              train=(n_sep, self.seed + 70_000),
                                              val=(max(4, n_sep // 8), self.seed + 80_000),
                                              test=(max(4, n_sep // 4), self.seed + 90_000))
        self.sep_sets = sep
        for name in ("sync/train", "sync/val", "offset", "localize", "separation/train", "separation/test",
                     "action_train", "action_test"):
            manifest = root / name / "manifest.json"
            description = _describe_set(manifest)
            print(f"[data] {name:18s} {description}")
            self.summary["synthetic"][name] = {"folder": self.rel(root / name), "description": description}
        if self.clips is not None and self.clips.exists():
            for path in find_videos(self.clips):
                try:
                    info = probe(path)
                except MediaError as err:
                    print(f"[clips] {err}")
                    self.summary["real_clips"].append({"path": str(path), "error": err.reason})
                    continue
                print(f"[clips] {path.name}: {info.width}x{info.height} @ {float(info.fps):.2f} fps, "
                      f"{info.duration_s:.1f} s, audio {info.sample_rate} Hz x{info.channels}")
                self.summary["real_clips"].append(info.to_dict())

    def separation_config(self):
        from avscene.models.separation_net import get_preset as separation_preset

        return separation_preset(SEPARATION_PRESET.get(self.preset, self.preset), variant="full",
                                 train_shift=SEPARATION_TRAINS_SHIFT)

    def pretrain(self, folder: Path) -> dict:
        from avscene.train.loop import fit
        from avscene.train.shift import make_shift_task

        steps = _budget("shift_steps", self.scale)
        task = make_shift_task(self.sync_train, self.shift_cfg, val_data=self.sync_val, n_val=128, seed=self.seed)
        # constant lr: on this world the network "takes off" after 150-250 steps, and a cosine
        # decay over a short budget can leave it at chance (it did at 360 steps)
        checkpoint = fit(task, self._train_config(folder, steps, schedule="constant"))
        log = json.loads((folder / "log.json").read_text())
        val = [r for r in log if "val_acc" in r]
        acc = val[-1]["val_acc"] if val else float("nan")
        return {
            "result": f"held-out sync accuracy {acc:.3f} (chance 0.5) after {steps} steps of {task.model_cfg.n_frames}"
                      f"-frame clips ({len(task.train_index)} training videos)",
            "headline": _headline("held-out sync accuracy", acc, 0.5, "chance: half the clips have their sound shifted"),
            "metrics": {"val_accuracy": round(acc, 4), "steps": steps, "global_batch": 16,
                        "training_videos": len(task.train_index), "preset": self.preset},
            "images": [{"path": self.rel(folder / "curves.png"), "caption": "loss and accuracy; validation on held-out scenes"}],
            "files": [{"path": self.rel(checkpoint), "caption": "the shift network (config, weights, optimizer, RNG)"},
                      {"path": self.rel(folder / "log.csv"), "caption": "training log"}],
            "notes": ["Negatives are the clip's own audio shifted by 2.0-5.8 s (scaled to the clip length); "
                      "benchmarks/shift.py trains the same model longer (see benchmarks/results/shift.json)."],
            "commands": [f"avscene train shift --data MY_VIDEOS/ --preset {self.preset} --out runs/mine/shift --steps 2000"],
        }

    def evaluate_sync(self, folder: Path) -> dict:
        from avscene.checkpoints import load_model
        from avscene.evaluate.sync import TRIAL_OFFSETS_S, fit_temperature, offset_trial
        from avscene.infer.sync import SyncOptions, peak_confidence, write_calibration
        from avscene.report.plots import plot_sync_scan

        model = load_model(self.shift_checkpoint, "cpu")
        fps = model.config.fps
        options = SyncOptions(max_offset_s=2.0, hop_s=1.0, max_windows=None)
        videos = find_videos(self.out / "synthetic" / "offset")
        rows = []
        from tqdm import tqdm

        for i, video in enumerate(tqdm(videos, desc="offset scans", unit="clip")):
            truth = round(TRIAL_OFFSETS_S[(i + 3) % len(TRIAL_OFFSETS_S)] * fps)
            rows.append(offset_trial(model, video, folder / "shifted", truth, options))
        errors = np.array([r["error_frames"] for r in rows])
        within = float(np.mean(np.abs(errors) <= 1))
        # a guess drawn uniformly over the scanned offsets lands within +-1 frame this often
        guess = float(np.mean([np.mean(np.abs(r["offsets"] - r["truth_frames"]) <= 1) for r in rows]))
        n_offsets = len(rows[0]["offsets"])
        temperature = fit_temperature([r["scores"] for r in rows],
                                      [int(np.flatnonzero(r["offsets"] == r["truth_frames"])[0]) for r in rows])
        write_calibration(self.shift_checkpoint, temperature)
        plot = plot_sync_scan(rows[0]["result"], folder / "scan.png")
        table = [{"clip": r["clip"], "true offset (frames)": r["truth_frames"], "found (frames)": r["found_frames"],
                  "confidence": round(peak_confidence(r["scores"], temperature)[1], 3)} for r in rows]
        return {
            "result": f"offset within +-1 frame on {within:.0%} of {len(rows)} held-out clips with known offsets "
                      f"between -2 s and +2 s (a random guess over the {n_offsets} scanned offsets: {guess:.1%})",
            "headline": _headline("offset found within +-1 frame", within, guess,
                                  f"a random guess over the {n_offsets} scanned offsets"),
            "metrics": {"offset_within_1_frame": round(within, 4), "random_guess": round(guess, 4), "clips": len(rows),
                        "temperature": round(float(temperature), 4)},
            "images": [{"path": self.rel(plot), "caption": f"sync scan of {rows[0]['clip']} "
                                                           f"(true offset {rows[0]['truth_frames']:+d} frames)"}],
            "tables": [{"rows": table, "caption": "positive = the audio lags the video"}],
            "commands": [f"avscene sync MY_VIDEO.mp4 --model {self.rel(self.shift_checkpoint)} --json sync.json "
                         f"--plot-dir plots/ --fix MY_VIDEO_synced.mp4"],
        }

    def localize(self, folder: Path) -> dict:
        from avscene.checkpoints import load_model
        from avscene.infer.localize import LocalizeOptions, localize_file, write_cam_outputs

        model = load_model(self.shift_checkpoint, "cpu")
        n_scenes = _budget("pointing_scenes", self.scale)
        config = self.pointing_config()
        score = pointing_game(model, [generate_scene(config, self.seed + 45_000 + i) for i in range(n_scenes)])
        scene = find_videos(self.out / "synthetic" / "localize")[0]
        result = localize_file(model, scene, LocalizeOptions())
        paths = write_cam_outputs(result, folder / "synthetic", model_name=self.rel(self.shift_checkpoint))
        label = f"{scene.name} (held-out synthetic scene: one sounding object, silent look-alikes)"
        side = config.height
        return {
            "result": f"the map's peak falls on the sounding object in {score['pointing']:.0%} of "
                      f"{score['windows']} held-out windows (chance: its box covers {score['chance']:.0%} of the "
                      f"picture); heat-map video with sound of a held-out scene",
            "headline": _headline("pointing at the sounding object", score["pointing"], score["chance"],
                                  "chance: the share of the picture its box covers"),
            "metrics": {"pointing": round(score["pointing"], 4), "chance_box_area": round(score["chance"], 4),
                        "windows": score["windows"], "scenes": n_scenes},
            "videos": [{"path": self.rel(paths["video"]), "caption": label}],
            "images": [{"path": self.rel(paths["sheet"]), "caption": label}],
            "notes": [f"|CAM| as the release: the per-cell logit of the shift network, absolute value, averaged over "
                      f"each {model.config.n_frames}-frame window of {n_scenes} held-out scenes ({side} x {side} "
                      f"pixels, the whole picture: the network is fully convolutional; each object in its own "
                      f"quarter, one of them sounding). benchmarks/localize.py plays the same game with more "
                      f"scoring rules (benchmarks/results/localize.json)."],
            "real_clip_maps": self.map_real_clips(folder / "real"),
            "commands": [f"avscene localize MY_VIDEO.mp4 -o cams/ --model {self.rel(self.shift_checkpoint)}"],
        }

    def pointing_config(self) -> SceneConfig:
        """Held-out pointing scenes: the ``localize`` task of the pulse world the shift network
        learnt, each object in its own quarter of a picture twice the training side, so boxes
        never overlap and a peak names one object."""
        cfg, side = self.shift_cfg, 2 * SceneConfig().height
        kinds = {k: v for k, v in SYNTHETIC_SYNC_WORLDS["pulses"].items() if k not in ("n_objects", "n_sounding")}
        return SceneConfig(task="localize", fps=cfg.fps, sample_rate=cfg.sample_rate, width=side, height=side,
                           layout="apart", duration_s=float(3 * cfg.n_frames / cfg.fps) + 0.1, **kinds)

    def map_real_clips(self, folder: Path) -> dict | None:
        """Sound-source maps of the ``clips`` videos, by the paper's network when the model store
        holds it, else by the demo's shift network; with that network's name, hash and card."""
        from avscene.checkpoints import load_network
        from avscene.infer.localize import LocalizeOptions, localize_file, write_cam_outputs

        clips = [Path(c["path"]) for c in self.summary["real_clips"] if "error" not in c]
        if not clips:
            return None
        choice = default_model("localize", self.shift_checkpoint)
        network = load_network(choice.path, "cpu")
        in_store = choice.path.resolve().is_relative_to(models_dir().resolve())
        about = {**network.id.to_dict(), "name": network.id.name if in_store else self.rel(choice.path),
                 "from_store": in_store,
                 "note": (f"The demo is {choice.note}." if in_store else
                          f"The demo's own shift network made these maps: {choice.note} (`avscene import-tf "
                          f"multisensory-nets.zip` puts the paper's networks there; the demo then uses them).")}
        print(f"[localize] real clips: network {network.id.describe()}")
        videos, images, failed = [], [], []
        for path in clips:
            try:
                result = localize_file(network.model, path, LocalizeOptions(max_windows=6))
                paths = write_cam_outputs(result, folder, model_name=about["name"], network=about)
            except (MediaError, ValueError) as err:
                failed.append(f"{path.name}: {err}")
                continue
            videos.append({"path": self.rel(paths["video"]), "caption": f"{path.name}: |CAM| of {about['name']}"})
            images.append({"path": self.rel(paths["sheet"]), "caption": path.name})
        return {"network": about, "videos": videos, "images": images, "failed": failed}

    def separate(self, folder: Path) -> dict:
        from avscene.checkpoints import load_model
        from avscene.data.separation_examples import separation_dataset
        from avscene.infer.separate import SeparateOptions, separate_file, write_separation
        from avscene.media import write_wav
        from avscene.evaluate.separation import evaluate_separation
        from avscene.train.loop import fit
        from avscene.train.separation import make_separation_task

        steps = _budget("separation_steps", self.scale)
        cfg = self.separation_config()
        cfg_name = SEPARATION_PRESET.get(self.preset, self.preset)
        task = make_separation_task(self.sep_sets["train"], cfg, init=self.shift_checkpoint,
                                    val_data=self.sep_sets["val"], seed=self.seed)
        run = demo_checkpoint("separation", self.out).parent
        checkpoint = fit(task, self._train_config(run, steps, **SEPARATION_RECIPE))
        model = load_model(checkpoint, "cpu")
        table = evaluate_separation({"demo (on/off)": model}, separation_dataset(self.sep_sets["test"], cfg, train=False),
                                    batch_size=4)
        written = table.write(folder)
        sdr, sdr_mix = table.value("demo (on/off)", "sdr_on", "all"), table.value("mixture", "sdr_on", "all")
        both, both_mix = table.value("demo (on/off)", "sdr", "all"), table.value("mixture", "sdr", "all")
        video = find_videos(self.sep_sets["test"])[0]
        result = separate_file(model, video, SeparateOptions())
        paths = write_separation(result, folder / "example", name=video.stem)
        mixture = write_wav(folder / "example" / f"{video.stem}_mixture.wav", result.mixture, result.sample_rate)
        return {
            "result": f"on-screen SDR {sdr:.1f} dB vs {sdr_mix:.1f} dB for the unprocessed mixture, on "
                      f"{table.summary['mixture']['all']['n']} clips of {len(find_videos(self.sep_sets['test']))} "
                      f"held-out scenes ({steps} training steps); SDR of both sources {both:.1f} dB vs {both_mix:.1f}",
            "headline": _headline("on-screen SDR", sdr, sdr_mix, "the unprocessed mixture", unit="dB",
                                  target=SEPARATION_TARGET_DB),
            "metrics": {"sdr_on_screen_db": round(sdr, 2), "sdr_on_screen_mixture_db": round(sdr_mix, 2),
                        "sdr_both_db": round(both, 2), "sdr_both_mixture_db": round(both_mix, 2), "steps": steps},
            "videos": [{"path": self.rel(paths["on_mp4"]), "caption": "the video with its on-screen sound"},
                       {"path": self.rel(paths["off_mp4"]), "caption": "the video with its off-screen sound"}],
            "audio": [{"path": self.rel(mixture), "caption": "mixture"},
                      {"path": self.rel(paths["on_wav"]), "caption": "on-screen (separated)"},
                      {"path": self.rel(paths["off_wav"]), "caption": "off-screen (separated)"}],
            "images": [{"path": self.rel(paths["spectrogram"]), "caption": "mixture, on-screen and off-screen"}],
            "tables": [{"rows": table.rows(), "caption": "held-out mixtures (Table 2 of the paper, in shape)"}],
            "files": [{"path": self.rel(p)} for p in written.values()],
            "notes": [f"The {cfg_name} separator ({cfg.spectrogram.n_bins} frequency bins, output {cfg.output}, "
                      f"loss {cfg.loss}) on the shift network's features "
                      f"({'fine-tuned' if cfg.train_shift else 'its weights kept fixed'}), trained for {steps} steps of "
                      f"{SEPARATION_RECIPE['global_batch']} mixtures (Adam, lr {SEPARATION_RECIPE['lr']:g}, cosine "
                      f"decay), on {len(find_videos(self.sep_sets['train']))} training scenes of the "
                      f"{SEPARATION_WORLD} world: a pulsing object (a silent look-alike beside it in half the "
                      "scenes) and its tone or hiss bursts, mixed with off-screen bursts as loud; "
                      "waveforms with the mixture's phase (the default of `avscene separate`). "
                      "benchmarks/separation_recipes.py compares recipes at this budget. "
                      "benchmarks/separation.py trains the small separator on the talking-face world, for thousands "
                      "of steps, against the audio-only PIT baseline and the single-frame ablation "
                      "(benchmarks/results/separation*.json)."],
            "commands": [f"avscene train separation --data MY_VIDEOS/ --init {self.rel(self.shift_checkpoint)} "
                         f"--preset {cfg_name} --lr {SEPARATION_RECIPE['lr']:g} "
                         + ("" if SEPARATION_TRAINS_SHIFT else "--freeze-shift ") +
                         f"--schedule {SEPARATION_RECIPE['schedule']} --out runs/mine/separation",
                         "avscene separate MY_VIDEO.mp4 -o separated/ --model runs/mine/separation/checkpoint.pt"],
        }

    def classify(self, folder: Path) -> dict:
        from avscene.checkpoints import load_model
        from avscene.data.labelled import index_labelled
        from avscene.evaluate.action import evaluate
        from avscene.report.plots import plot_confusion_matrix
        from avscene.train.action import make_action_task
        from avscene.train.loop import fit

        steps = _budget("action_steps", self.scale)
        root = self.out / "synthetic"
        task = make_action_task(root / "action_train", init=self.shift_checkpoint, seed=self.seed)
        run = demo_checkpoint("action", self.out).parent
        checkpoint = fit(task, self._train_config(run, steps, global_batch=8, micro_batch=8,
                                                  lr=5e-3, schedule="cosine"))
        model = load_model(checkpoint, "cpu")
        test = index_labelled(root / "action_test", subset="test", classes=task.train_index.classes)
        result = evaluate(model, test, n_clips=4, progress=True)
        write_json(folder / "eval.json", result.to_dict())
        plot = plot_confusion_matrix(result.confusion, result.class_names, folder / "confusion.png")
        return {
            "result": f"top-1 {result.top1:.0%} on {result.n_videos} held-out videos of {len(result.class_names)} "
                      f"classes (chance {1 / len(result.class_names):.0%}), {steps} fine-tuning steps",
            "headline": _headline("held-out top-1", result.top1, 1 / len(result.class_names),
                                  f"chance: 1 / {len(result.class_names)} classes"),
            "metrics": {"top1": round(result.top1, 4), "top5": round(result.top5, 4),
                        "mean_class_accuracy": round(result.mean_class_accuracy, 4), "steps": steps},
            "images": [{"path": self.rel(plot), "caption": "confusion matrix (rows: true class)"},
                       {"path": self.rel(run / "curves.png"), "caption": "fine-tuning curves"}],
            "files": [{"path": self.rel(folder / "eval.json")}],
            "notes": ["benchmarks/action.py compares pretrained with and without sound against scratch over "
                      "3 seeds (benchmarks/results/action.json)."],
            "commands": [f"avscene train action --data UCF101/ --init {self.rel(self.shift_checkpoint)} "
                         f"--out runs/mine/action",
                         "avscene classify MY_VIDEO.mp4 --model runs/mine/action/checkpoint.pt --top-k 5"],
        }


def run_demo(out: str | Path, *, minutes: float = 15.0, clips: str | Path | None = None, seed: int = 0,
             preset: str = "small") -> Path:
    """Run the demo into ``out`` (finished steps are reused); returns the path of ``report.html``."""
    return Demo(out, minutes=minutes, clips=clips, seed=seed, preset=preset).run()
