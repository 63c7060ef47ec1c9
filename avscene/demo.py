"""The main job, ``avscene demo``: the whole system end to end on the synthetic world.

Steps, each with a progress bar and a one-line result, each reused when the demo runs again
(a step that finished left ``<out>/<step>/step.json``; training steps resume from checkpoints):

1. ``data``: synthetic sets for every task (the ``pulses`` sync world, localize, separation and
   action scenes) and a probe of the real clips given with ``clips``.
2. ``shift``: self-supervised sync pretraining of a small shift network.
3. ``sync``: held-out sync accuracy, offset recovery by the sync scan on copies with known
   offsets, a calibrated confidence, and a scan curve.
4. ``localize``: class-activation-map videos (with their sound) of a held-out scene with silent
   look-alikes and of the real clips.
5. ``separation``: a small on/off-screen separator fine-tuned from the shift network, scored on
   held-out mixtures, and one mixture separated into audio players and spectrograms.
6. ``action``: a small action classifier fine-tuned from the shift network, with its confusion
   matrix.

Then ``report.html`` (:mod:`avscene.report.page`). ``minutes`` scales every budget (15: about
15 minutes on a 2-core CPU); the numbers are those of this small budget, and the benchmarks
under ``benchmarks/`` give the figures of larger runs.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from avscene.data.videos import find_videos
from avscene.files import write_json
from avscene.media import MediaError, probe
from avscene.models import get_preset
from avscene.report.page import rel_path, write_report
from avscene.store import demo_checkpoint
from avscene.synth import ACTION_CLASSES, SceneConfig, ensure_dataset
from avscene.synth.worlds import SYNTHETIC_SYNC_WORLDS

#: Budgets at ``minutes=15`` (scaled linearly; never below the floor in brackets).
BUDGET = {"sync_scenes": (120, 12), "shift_steps": (420, 12), "offset_clips": (13, 3),
          "separation_scenes": (48, 6), "separation_steps": (60, 6), "action_scenes": (60, 12),
          "action_steps": (120, 6)}


def _budget(name: str, scale: float) -> int:
    full, floor = BUDGET[name]
    return max(floor, round(full * scale))


def _describe_set(manifest_path: Path) -> str:
    manifest = json.loads(manifest_path.read_text())
    scenes = manifest["scenes"]
    duration = sum(s.get("duration_s", 0.0) for s in scenes)
    line = f"{len(scenes)} scenes, {duration:.0f} s of video"
    labels = Counter(s.get("label_name") for s in scenes if s.get("label_name"))
    if labels:
        line += f", classes: {', '.join(f'{k} x{v}' for k, v in sorted(labels.items()))}"
    return line


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

    # -- plumbing ------------------------------------------------------------------------------------

    def rel(self, path: str | Path) -> str:
        return rel_path(self.out, path)

    def step(self, name: str, title: str, body: Callable[[Path], dict]) -> dict:
        """Run ``body(step_dir) -> Step fields`` unless ``step.json`` says it already finished."""
        folder = self.out / name
        done = folder / "step.json"
        if done.exists():
            record = json.loads(done.read_text())
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
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(self.seed)
        self.make_data()
        self.step("shift", "Self-supervised audio-visual sync pretraining", self.pretrain)
        self.step("sync", "Is the sound in sync? Held-out accuracy and offset recovery", self.evaluate_sync)
        self.step("localize", "Where is the sound? Class activation maps", self.localize)
        self.step("separation", "On-screen / off-screen source separation", self.separate)
        self.step("action", "Action recognition fine-tuned from the sync network", self.classify)
        write_json(self.out / "summary.json", self.summary)
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
        sep = write_synthetic_separation_data(root / "separation", sep_cfg, train=(n_sep, self.seed + 70_000),
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

        return separation_preset(self.preset, variant="full")

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
        temperature = fit_temperature([r["scores"] for r in rows],
                                      [int(np.flatnonzero(r["offsets"] == r["truth_frames"])[0]) for r in rows])
        write_calibration(self.shift_checkpoint, temperature)
        plot = plot_sync_scan(rows[0]["result"], folder / "scan.png")
        table = [{"clip": r["clip"], "true offset (frames)": r["truth_frames"], "found (frames)": r["found_frames"],
                  "confidence": round(peak_confidence(r["scores"], temperature)[1], 3)} for r in rows]
        return {
            "result": f"offset within +-1 frame on {within:.0%} of {len(rows)} held-out clips with known offsets "
                      f"between -2 s and +2 s",
            "metrics": {"offset_within_1_frame": round(within, 4), "clips": len(rows),
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
        inputs = find_videos(self.out / "synthetic" / "localize")[:1]
        if self.clips is not None and self.clips.exists():
            inputs += [Path(c["path"]) for c in self.summary["real_clips"] if "error" not in c]
        videos, images, failed = [], [], []
        for path in inputs:
            real = path not in inputs[:1]
            try:
                result = localize_file(model, path, LocalizeOptions(max_windows=6 if real else None))
                paths = write_cam_outputs(result, folder / ("real" if real else "synthetic"),
                                          model_name=self.rel(self.shift_checkpoint))
            except (MediaError, ValueError) as err:
                failed.append(f"{path.name}: {err}")
                continue
            label = f"{path.name} ({'real clip' if real else 'held-out synthetic scene: one sounding object, silent look-alikes'})"
            videos.append({"path": self.rel(paths["video"]), "caption": label})
            images.append({"path": self.rel(paths["sheet"]), "caption": label})
        notes = ["|CAM| as the release: the per-cell logit of the shift network, absolute value. "
                 "benchmarks/localize.py measures it on held-out scenes (benchmarks/results/localize.json)."]
        if failed:
            notes.append("Could not localize: " + "; ".join(failed))
        return {
            "result": f"heat-map videos with sound for {len(videos)} video(s)",
            "metrics": {"videos": len(videos), "failed": len(failed)},
            "videos": videos, "images": images, "notes": notes,
            "commands": [f"avscene localize MY_VIDEO.mp4 -o cams/ --model {self.rel(self.shift_checkpoint)}"],
        }

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
        task = make_separation_task(self.sep_sets["train"], cfg, init=self.shift_checkpoint,
                                    val_data=self.sep_sets["val"], seed=self.seed)
        run = demo_checkpoint("separation", self.out).parent
        checkpoint = fit(task, self._train_config(run, steps, optimizer="adam", lr=1e-3, grad_clip=10.0,
                                                  global_batch=8, micro_batch=8, schedule="cosine"))
        model = load_model(checkpoint, "cpu")
        table = evaluate_separation({"demo (on/off)": model}, separation_dataset(self.sep_sets["test"], cfg, train=False),
                                    batch_size=4)
        written = table.write(folder)
        sdr, sdr_mix = table.value("demo (on/off)", "sdr", "all"), table.value("mixture", "sdr", "all")
        video = find_videos(self.sep_sets["test"])[0]
        result = separate_file(model, video, SeparateOptions())
        paths = write_separation(result, folder / "example", name=video.stem)
        mixture = write_wav(folder / "example" / f"{video.stem}_mixture.wav", result.mixture, result.sample_rate)
        return {
            "result": f"on-screen SDR {sdr:.1f} dB vs {sdr_mix:.1f} dB for the mixture itself, on "
                      f"{len(find_videos(self.sep_sets['test']))} held-out scenes ({steps} training steps)",
            "metrics": {"sdr_on_screen_db": round(sdr, 2), "sdr_mixture_db": round(sdr_mix, 2), "steps": steps},
            "videos": [{"path": self.rel(paths["on_mp4"]), "caption": "the video with its on-screen sound"},
                       {"path": self.rel(paths["off_mp4"]), "caption": "the video with its off-screen sound"}],
            "audio": [{"path": self.rel(mixture), "caption": "mixture"},
                      {"path": self.rel(paths["on_wav"]), "caption": "on-screen (separated)"},
                      {"path": self.rel(paths["off_wav"]), "caption": "off-screen (separated)"}],
            "images": [{"path": self.rel(paths["spectrogram"]), "caption": "mixture, on-screen and off-screen"}],
            "tables": [{"rows": table.rows(), "caption": "held-out mixtures (Table 2 of the paper, in shape)"}],
            "files": [{"path": self.rel(p)} for p in written.values()],
            "notes": ["A short fine-tune: benchmarks/separation.py trains longer and compares the audio-only "
                      "PIT baseline and the single-frame ablation (benchmarks/results/separation.json)."],
            "commands": [f"avscene train separation --data MY_VIDEOS/ --init {self.rel(self.shift_checkpoint)} "
                         f"--out runs/mine/separation",
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
