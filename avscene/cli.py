"""The ``avscene`` command line: a thin shell over the library.

``get_parser()`` lists the commands, each added by its own ``_add_<command>`` beside the
``_cmd_<command>`` that runs it; ``main(argv) -> int`` runs one. Flags are named as the keyword
arguments of the functions they call (older spellings stay as aliases). A :class:`MediaError` (or
any other error a user can act on) becomes one line on stderr and a non-zero exit, never a
traceback; commands over many videos go through one batch loop (:func:`_run_batch`) that reports a
bad file and goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from avscene import __version__
from avscene.media import MediaError
from avscene.store import demo_checkpoint

# Names spelt out so that building the parser does not import torch; tests/test_cli.py keeps
# each equal to the library's own.
#: ``avscene.models.PRESETS`` and ``avscene.models.separation_net.PRESETS``.
SHIFT_PRESETS = ("paper", "paper-cam", "small", "small-cam", "tiny")
SEPARATION_PRESETS = ("paper", "small", "small-lite", "tiny")
#: ``avscene.synth.worlds.SYNTHETIC_SYNC_WORLDS``.
SYNTHETIC_SYNC_WORLD_NAMES = ("full", "motions", "pulses", "pulses-crowd", "pulses-lookalikes")
#: ``avscene.synth.worlds.SYNTHETIC_SEPARATION_WORLDS``.
SYNTHETIC_SEPARATION_WORLD_NAMES = ("pulses", "talk")
#: ``avscene.models.separation_net.PHASE_SOURCES`` and ``DEFAULT_PHASE``.
SEPARATION_PHASES, DEFAULT_SEPARATION_PHASE = ("mixture", "pred"), "mixture"
#: ``avscene.models.separation_net.VARIANTS``.
SEPARATION_VARIANTS = ("audio-only", "full", "full-pit", "mono", "no-early-fusion", "scratch", "single-frame")
#: ``avscene.synth.LAYOUTS``.
SCENE_LAYOUTS = ("shared", "apart")
#: ``avscene.media.geometry.FITS``.
FITS = ("crop", "pad", "squash", "squash-crop")
#: ``avscene.release.convert.KINDS``.
RELEASE_KINDS = ("cam", "sep", "shift", "unet-pit")

#: Exit codes: 0 ok, 1 some inputs failed (batch went on), 2 usage or fatal error.
EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2


# -- shared pieces --------------------------------------------------------------------------------


def _add_videos(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="+", type=Path, metavar="VIDEO", help="files or folders")


def _add_model(p: argparse.ArgumentParser, what: str, command: str) -> None:
    """``--model`` (a checkpoint or a model-store name) and ``--device``."""
    fallback = demo_checkpoint({"classify": "action", "separate": "separation"}.get(command, "shift"))
    paper = "" if command == "classify" else "the paper's network if imported, else "
    p.add_argument("--model", default=None, help=f"{what} checkpoint or model-store name (default: {paper}{fallback})")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")


def _add_fit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fit", choices=FITS, default=None,
                   help="how frames meet the model's square input: centre crop, pad, squash, or squash to 8/7 then "
                        "centre crop (default: the one the model's weights expect: crop for avscene's, squash-crop "
                        "(squash for maps) for the release's)")


def _add_overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace outputs already in OUT_DIR (default: never; a taken name gets _2, _3, ...)")


def _add_quiet(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", dest="progress", action="store_false", help="no progress bars")


def _expand_inputs(paths: list[Path]) -> list[Path]:
    """Files as given; folders become the videos inside them (recursively), in order."""
    from avscene.data.videos import find_videos

    out: list[Path] = []
    for p in paths:
        # a folder without videos stays in the list, so that the batch reports it
        out.extend((find_videos(p) or [p]) if p.is_dir() else [p])
    return out


def _run_batch(paths: list[Path], work: Callable[[Path], Any]) -> list[tuple[Path, Any, str | None]]:
    """``work(path)`` for every input video (folders expanded), in order: ``(path, result, None)``,
    or ``(path, None, error)`` for a file that failed, reported on stderr as one line while the
    batch goes on. Probes and clip reads run in a decode worker process (:mod:`avscene.media.isolate`),
    so a decoder that crashes or hangs on one file costs that file only."""
    from avscene.media.isolate import isolated_decoding

    outcomes = []
    with isolated_decoding():
        for path in _expand_inputs(paths):
            try:
                if path.is_dir():
                    raise MediaError(path, "is a folder with no video files in it")
                outcomes.append((path, work(path), None))
            except (MediaError, ValueError) as err:
                print(f"error: {err}", file=sys.stderr)
                outcomes.append((path, None, str(err)))
    return outcomes


def _batch_exit(outcomes: list[tuple[Path, Any, str | None]]) -> int:
    return EXIT_SOME_FAILED if any(error for _, _, error in outcomes) else EXIT_OK


def _load_task_model(spec: str | Path | None, device: str, task: str, command: str | None = None):
    """The :class:`~avscene.checkpoints.Network` of a ``task`` checkpoint (``shift``,
    ``separation`` or ``action``): ``spec`` is a file or a model-store name; None takes
    ``command``'s default (the paper's network when the store holds it, else the demo's, saying
    which on stderr). A clear error when there is none or it is of another task."""
    from avscene.checkpoints import load_network
    from avscene.models import ActionNet, SeparationNet, ShiftNet, TwoTowerNet
    from avscene.store import default_model, resolve_model
    from avscene.train.runtime import pick_device

    model_class = {"shift": ShiftNet, "separation": SeparationNet, "action": ActionNet,
                   "correspondence": TwoTowerNet}[task]
    hint = (f"train one with `avscene train {task}`" + (" (or run `make demo`)" if task == "shift" else "")
            + ("" if task == "action" else ", or import the paper's with `avscene import-tf`"))
    if spec is None:
        default = default_model(command, demo_checkpoint(task)) if command else None
        path = default.path if default else demo_checkpoint(task)
        if not path.exists():
            raise FileNotFoundError(f"no model given and none at {path}: {hint} and pass --model")
        if default:
            print(f"{command}: {default.note}", file=sys.stderr)
    else:
        path = resolve_model(spec)
    network = load_network(path, pick_device(device))
    if not isinstance(network.model, model_class):
        raise ValueError(f"{path}: not {'an' if task[0] in 'aeiou' else 'a'} {task} checkpoint; {hint}")
    return network


class _Provenance:
    """What every output of a run says about its network: which one (name, short hash, what it
    was trained on) and, once per run on stderr and in each result made from a real video, that a
    network of the synthetic world knows nothing of real video."""

    def __init__(self, network, command: str):
        self.network, self.command, self.warned = network, command, False
        print(f"{command}: network {network.id.describe()}", file=sys.stderr)

    def fields(self, path: Path) -> dict:
        from avscene.cards import input_caveat
        from avscene.media import probe
        from avscene.synth.dataset import is_synthetic_video

        caveat = input_caveat(self.network.card, is_synthetic_video(probe(path)))
        if caveat and not self.warned:
            print(f"warning: {self.command}: {caveat}", file=sys.stderr)
            self.warned = True
        return {"network": self.network.id.to_dict(), "caveat": caveat}


def _checkpoint_arg(spec: str) -> Path | str:
    """``--init``: a checkpoint file or a model-store name (its path); ``scratch`` stays as is."""
    from avscene.store import resolve_model

    if spec == "scratch":
        return spec
    try:
        return resolve_model(spec)
    except FileNotFoundError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _with_init_layout(shift_cfg, init: Path | None):
    """``shift_cfg`` with the padding, pooling and input profile of the shift checkpoint ``init``:
    weights imported from the release keep computing as they were trained when fine-tuned."""
    import dataclasses

    from avscene.checkpoints import read_shift_checkpoint

    if init is None:
        return shift_cfg
    source = read_shift_checkpoint(init)[0]
    return dataclasses.replace(shift_cfg, padding=source.padding, fractional_pool=source.fractional_pool,
                               profile=source.profile)


# -- media and synthetic data ---------------------------------------------------------------------


def _add_probe(sub) -> None:
    p = sub.add_parser("probe", help="describe media files as JSON lines")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.set_defaults(func=_cmd_probe)


def _cmd_probe(args: argparse.Namespace) -> int:
    from avscene.media import probe
    from avscene.media.isolate import isolated_decoding

    failed = 0
    with isolated_decoding():  # a decoder crash or hang costs one file's line, not the rest
        for path in args.files:
            try:
                info = probe(path)
            except MediaError as err:
                print(f"error: {err}", file=sys.stderr)
                failed += 1
                continue
            print(json.dumps(info.to_dict()))
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _add_synth(sub) -> None:
    p = sub.add_parser("synth", help="generate a synthetic audio-visual set with ground truth")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--n", type=int, default=16, help="number of scenes (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", choices=("sync", "localize", "separation", "action", "objects"), default="sync",
                   help="objects: 2-4 sounding objects taking turns, their tracks, activity and sounds")
    p.add_argument("--size", type=int, default=None, help="frame side in pixels")
    p.add_argument("--layout", choices=SCENE_LAYOUTS, default=None,
                   help="objects share the picture (default) or each gets its own cell of a 2 x 2 grid (apart)")
    p.add_argument("--duration-s", dest="duration_s", type=float, default=None, help="scene length (s)")
    p.add_argument("--unseen-action-sound", dest="unseen_action_sound", type=float, default=None, metavar="P",
                   help="action: probability that another class's sound plays off-screen as loud as the action's")
    p.add_argument("--object-offset-s", dest="object_offset_s", type=float, default=None, metavar="S",
                   help="objects: one object's sound lags its picture by S seconds (negative: leads)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_synth)


def _cmd_synth(args: argparse.Namespace) -> int:
    from avscene.synth import SceneConfig, write_dataset

    overrides = {k: v for k, v in (("width", args.size), ("height", args.size), ("duration_s", args.duration_s),
                                   ("unseen_action_sound", args.unseen_action_sound), ("layout", args.layout),
                                   ("object_offset_s", args.object_offset_s)) if v}
    if args.task == "objects":
        overrides.setdefault("n_objects", (2, 4))
    config = SceneConfig(task=args.task, **overrides)
    manifest = write_dataset(args.out_dir, args.n, args.seed, task=args.task, config=config, progress=not args.quiet)
    print(f"wrote {args.n} {args.task} scenes: {manifest}")
    return EXIT_OK


def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="cut a folder of videos into WebDataset shards for training at scale")
    p.add_argument("video_dir", type=Path, metavar="VIDEO_DIR", help="folder of videos (searched recursively)")
    p.add_argument("--out", type=Path, required=True, metavar="SHARD_DIR",
                   help="writes shard-NNNNNN.tar (+ .json summaries), plan.json and report.json (skipped files); "
                        "run again to resume")
    p.add_argument("--preset", choices=SHIFT_PRESETS, default="small",
                   help="model preset the shards are for (its frame size, frame rate, sample rate and clip length)")
    p.add_argument("--shift-range-s", "--shift-range", dest="shift_range_s", type=float, nargs=2,
                   metavar=("MIN_S", "MAX_S"), default=None,
                   help="the --shift-range-s you will train with (sets the segment length)")
    p.add_argument("--workers", type=int, default=1, help="processes probing and encoding (default 1)")
    p.add_argument("--clips-per-shard", dest="clips_per_shard", type=int, default=None,
                   help="segments per shard (default 64, ~150-400 MB at the paper's size)")
    p.add_argument("--jpeg-q", dest="jpeg_q", type=int, default=None,
                   help="MJPEG quantiser, 2 (finest) .. 31 (default 3)")
    p.add_argument("--seed", type=int, default=None, help="how segments are dealt to shards (default 0)")
    _add_quiet(p)
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from avscene.data.shards import prepare_main
    from avscene.models import get_preset
    from avscene.train.shift import shard_settings

    settings = shard_settings(get_preset(args.preset),
                              shift_range_s=tuple(args.shift_range_s) if args.shift_range_s else None)
    # flags left out keep prepare_shards' defaults
    settings.update({k: getattr(args, k) for k in ("clips_per_shard", "jpeg_q", "seed")
                     if getattr(args, k) is not None})
    code = prepare_main(args.video_dir, args.out, workers=args.workers, progress=args.progress, **settings)
    print(f"plan and report: {args.out / 'plan.json'}, {args.out / 'report.json'}")
    print(f"train with: avscene train shift --data {args.out} --preset {args.preset} --out RUN")
    return code


# -- training -------------------------------------------------------------------------------------


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model (shift pretraining, separation, action recognition)")
    tasks = p.add_subparsers(dest="train_task", required=True, metavar="TASK")
    _add_train_shift(tasks)
    _add_train_separation(tasks)
    _add_train_action(tasks)
    _add_train_correspondence(tasks)


def _add_train_args(p: argparse.ArgumentParser, *, lr: float, optimizer: str) -> None:
    """Flags every ``train`` task shares (they map onto :class:`TrainConfig`)."""
    p.add_argument("--out", type=Path, required=True, help="run folder: checkpoint, logs, curves")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--global-batch", "--batch-size", dest="global_batch", type=int, default=16,
                   help="clips per optimizer step, over all processes")
    p.add_argument("--micro-batch", dest="micro_batch", type=int, default=None,
                   help="clips per forward pass and process (default: global batch / processes)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default=optimizer)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    p.add_argument("--warmup-steps", dest="warmup_steps", type=int, default=0)
    p.add_argument("--lr-drop-step", dest="lr_drop_step", type=int, default=None,
                   help="multiply the lr by 0.1 from this step on (constant schedule)")
    p.add_argument("--weight-decay", dest="weight_decay", type=float, default=1e-5)
    p.add_argument("--grad-clip", dest="grad_clip", type=float, default=5.0)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--channels-last", dest="channels_last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--num-workers", "--workers", dest="num_workers", type=int, default=2,
                   help="data-loading processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", dest="log_every", type=int, default=10)
    p.add_argument("--val-every", dest="val_every", type=int, default=100)
    p.add_argument("--ckpt-every", dest="ckpt_every", type=int, default=100)
    p.add_argument("--no-resume", dest="resume", action="store_false", help="start over even if a checkpoint exists")
    p.add_argument("--quiet", dest="progress", action="store_false", help="no progress bar")


def _train_config(args: argparse.Namespace):
    from avscene.train.loop import TrainConfig
    from avscene.train.runtime import launch_env

    _, world, _ = launch_env()
    micro = args.micro_batch or max(1, args.global_batch // world)
    fields = {f: getattr(args, f) for f in (
        "steps", "global_batch", "optimizer", "lr", "schedule", "warmup_steps", "lr_drop_step", "weight_decay",
        "grad_clip", "precision", "channels_last", "compile", "device", "num_workers", "seed", "log_every",
        "val_every", "ckpt_every", "resume", "progress")}
    return TrainConfig(out_dir=str(args.out), micro_batch=micro, **fields)


def _add_train_shift(tasks) -> None:
    p = tasks.add_parser("shift", help="self-supervised audio-visual sync pretraining")
    # str, not Path: a Path would turn a shard url's "://" into ":/"
    p.add_argument("--data", required=True,
                   help="folder of videos (searched recursively); shards from `avscene prepare` (their folder, "
                        "a .tar path or {000000..000099} pattern, or a url: https://, gs://, 'pipe:CMD'); "
                        "or 'synthetic' for the built-in world")
    p.add_argument("--val-data", dest="val_data", default=None,
                   help="held-out videos or shards (default: ~10%% of --data's videos or shards, chosen by name)")
    p.add_argument("--preset", choices=SHIFT_PRESETS, default="small", help="model preset (default small)")
    p.add_argument("--audio-input", dest="audio_input", choices=("waveform", "spectrogram"), default=None)
    p.add_argument("--crop-size", dest="crop_size", type=int, default=None, metavar="PX",
                   help="square crop the net trains on (default the preset's; frames are stored at 8/7 of it)")
    p.add_argument("--no-sound", dest="no_sound", action="store_true", help="vision-only (audio features zeroed)")
    p.add_argument("--init", type=_checkpoint_arg, default=None, metavar="SHIFT_CKPT",
                   help="start from a trained shift network or store name (same widths as --preset), e.g. to "
                        "fine-tune it in the finer-CAM layout: --preset small-cam --init small.pt")
    p.add_argument("--negatives", choices=("shift", "random-pair"), default="shift")
    p.add_argument("--shift-range-s", "--shift-range", dest="shift_range_s", type=float, nargs=2,
                   metavar=("MIN_S", "MAX_S"), default=None,
                   help="shift of negatives in seconds (default: 2.0-5.8 s scaled by clip/4.2 s)")
    p.add_argument("--n-val", dest="n_val", type=int, default=64, help="held-out clips for validation")
    p.add_argument("--synthetic-scenes", dest="synthetic_scenes", type=int, default=400,
                   help="with --data synthetic: number of training scenes")
    p.add_argument("--synthetic-world", dest="synthetic_world", choices=SYNTHETIC_SYNC_WORLD_NAMES,
                   default="pulses",
                   help="with --data synthetic: salient pulse scenes (learnable on a CPU, default), the same with "
                        "1-3 look-alikes of which one sounds (pulses-crowd, for localization; pulses-lookalikes: always "
                        "2-3), all five motion kinds at that size (motions) or at their natural size (full)")
    _add_train_args(p, lr=1e-2, optimizer="sgd")
    p.set_defaults(func=_cmd_train_shift)


def _cmd_train_shift(args: argparse.Namespace) -> int:
    from avscene.models import get_preset
    from avscene.train.loop import fit
    from avscene.synth.worlds import write_synthetic_sync_data
    from avscene.train.shift import make_shift_task

    overrides = {k: v for k, v in (("audio_input", args.audio_input), ("crop_size", args.crop_size)) if v}
    if args.no_sound:
        overrides["use_sound"] = False
    model_cfg = _with_init_layout(get_preset(args.preset, **overrides), args.init)
    data, val_data = args.data, args.val_data
    if str(data) == "synthetic":
        data, val_data = write_synthetic_sync_data(args.out / "synthetic", args.synthetic_scenes, args.seed,
                                                   model_cfg, world=args.synthetic_world, progress=args.progress)
    task = make_shift_task(data, model_cfg, val_data=val_data, negatives=args.negatives,
                           shift_range_s=tuple(args.shift_range_s) if args.shift_range_s else None,
                           n_val=args.n_val, seed=args.seed, progress=args.progress, num_workers=args.num_workers,
                           init=args.init)
    if task.train_index.skipped:
        print(task.train_index.report(), file=sys.stderr)
    print(f"checkpoint: {fit(task, _train_config(args))}")
    return EXIT_OK


def _add_train_separation(tasks) -> None:
    p = tasks.add_parser("separation", help="on/off-screen source separation (fine-tunes a shift network)")
    p.add_argument("--data", type=Path, required=True,
                   help="folder of videos (mixtures of two videos), a synthetic separation set "
                        "(`avscene synth --task separation`; ground-truth stems) or 'synthetic' to generate one")
    p.add_argument("--val-data", dest="val_data", type=Path, default=None,
                   help="held-out videos or scenes (default: ~10%% of --data, chosen by name)")
    p.add_argument("--init", type=_checkpoint_arg, default=None,
                   help="shift checkpoint or model-store name to start the shift network from (ignored by "
                        "scratch and audio-only)")
    p.add_argument("--variant", choices=SEPARATION_VARIANTS, default="full", help="Table 2 row (default full)")
    p.add_argument("--preset", choices=SEPARATION_PRESETS, default="small", help="model preset (default small)")
    p.add_argument("--output", choices=("spectrogram", "mixture-residual", "mask"), default=None,
                   help="how the U-Net's heads become spectrograms: regressed from nothing (the release; "
                        "default of paper), as the mixture's plus a correction (default of small, tiny) or "
                        "the mixture split by a soft mask with a per-frame video gate (default of small-lite)")
    p.add_argument("--loss", choices=("log", "compressed"), default=None,
                   help="L1 on log magnitudes + 0.01 x phase (the release; default but for small-lite) or on "
                        "magnitudes^0.3 (default of small-lite)")
    p.add_argument("--freeze-shift", dest="train_shift", action="store_false",
                   help="keep the shift net's weights as --init left them and train the U-Net alone (a quarter "
                        "faster per step; better when the shift net was trained on the same world, as in the demo)")
    p.add_argument("--snr-db", dest="snr_db", type=float, nargs=2, metavar=("LO", "HI"), default=(0.0, 0.0),
                   help="on/off SNR range of training mixtures in dB (default 0 0, the release)")
    p.add_argument("--n-val", dest="n_val", type=int, default=32, help="held-out clips for validation")
    p.add_argument("--synthetic-scenes", dest="synthetic_scenes", type=int, default=400,
                   help="with --data synthetic: number of training scenes")
    p.add_argument("--synthetic-world", dest="synthetic_world", choices=SYNTHETIC_SEPARATION_WORLD_NAMES,
                   default="talk",
                   help="with --data synthetic: a talking face and an off-screen talker (default), or pulsing "
                        "objects and their bursts with off-screen bursts (pulses: the world `train shift` learns "
                        "by default, and the demo's)")
    _add_train_args(p, lr=1e-4, optimizer="adam")
    p.set_defaults(func=_cmd_train_separation, grad_clip=10.0, global_batch=8)


def _cmd_train_separation(args: argparse.Namespace) -> int:
    import dataclasses

    from avscene.models.separation_net import get_preset
    from avscene.train.loop import fit
    from avscene.synth.worlds import write_synthetic_separation_data
    from avscene.train.separation import make_separation_task

    overrides = {k: v for k, v in (("output", args.output), ("loss", args.loss)) if v}
    overrides["train_shift"] = args.train_shift
    model_cfg = get_preset(args.preset, variant=args.variant, **overrides)
    if model_cfg.init_from_shift:
        model_cfg = dataclasses.replace(model_cfg, shift=_with_init_layout(model_cfg.shift, args.init))
    data, val_data = args.data, args.val_data
    if str(data) == "synthetic":
        sets = write_synthetic_separation_data(args.out / "synthetic", model_cfg, progress=args.progress,
                                               world=args.synthetic_world, train=(args.synthetic_scenes, args.seed),
                                               val=(max(8, args.synthetic_scenes // 8), args.seed + 10_000))
        data, val_data = sets["train"], sets["val"]
    task = make_separation_task(data, model_cfg, init=args.init, val_data=val_data, snr_db=tuple(args.snr_db),
                                n_val=args.n_val, seed=args.seed, progress=args.progress)
    print(f"checkpoint: {fit(task, _train_config(args))}")
    return EXIT_OK


def _add_train_action(tasks) -> None:
    p = tasks.add_parser("action", help="action recognition: fine-tune a shift network (or train from scratch)")
    p.add_argument("--data", type=Path, required=True,
                   help="UCF-101 folder, folder of class folders, 'path,label' CSV, synthetic action set "
                        "(`avscene synth --task action`) or 'synthetic' to generate one")
    p.add_argument("--init", type=_checkpoint_arg, required=True, metavar="SHIFT_CKPT|scratch",
                   help="shift checkpoint or model-store name to start the trunk from (its architecture is "
                        "used), or 'scratch'")
    p.add_argument("--val-data", dest="val_data", type=Path, default=None,
                   help="held-out labelled videos (default: UCF-101's test list, else ~10%% of each class)")
    p.add_argument("--preset", choices=SHIFT_PRESETS, default=None,
                   help="model preset with --init scratch (default small); with a checkpoint it must match it")
    p.add_argument("--layout", choices=("auto", "ucf101", "folders", "csv", "synthetic"), default="auto")
    p.add_argument("--split", type=int, default=1, help="UCF-101 split (1-3)")
    p.add_argument("--splits-dir", dest="splits_dir", type=Path, default=None,
                   help="UCF-101: folder of classInd.txt and the split lists (default: found next to the data)")
    p.add_argument("--no-sound", dest="no_sound", action="store_true", help="vision-only (audio features zeroed)")
    p.add_argument("--freeze-backbone", dest="freeze_backbone", action="store_true",
                   help="train the linear head only (linear probe)")
    p.add_argument("--clip-s", dest="clip_s", type=float, default=None,
                   help="clip length in seconds (default 2.56 s, or the preset's clip when shorter)")
    p.add_argument("--n-val", dest="n_val", type=int, default=64, help="held-out clips for validation during training")
    p.add_argument("--eval-clips", dest="eval_clips", type=int, default=10,
                   help="clips averaged per video in the final evaluation (eval.json, confusion.png)")
    p.add_argument("--synthetic-per-class", dest="synthetic_per_class", type=int, default=20,
                   help="with --data synthetic: training scenes per class")
    _add_train_args(p, lr=1e-2, optimizer="sgd")
    p.set_defaults(func=_cmd_train_action, steps=300)


def _cmd_train_action(args: argparse.Namespace) -> int:
    from avscene.checkpoints import read_shift_checkpoint
    from avscene.models import get_preset
    from avscene.synth import ACTION_CLASSES
    from avscene.synth.worlds import write_synthetic_action_data
    from avscene.train.action import make_action_task
    from avscene.train.loop import fit
    from avscene.train.runtime import launch_env

    init = None if str(args.init) == "scratch" else args.init
    if init is not None:  # the checkpoint's architecture; a --preset given too must match it
        shift_cfg = read_shift_checkpoint(init)[0] if args.preset is None else get_preset(args.preset)
    else:
        shift_cfg = get_preset(args.preset or "small")
    data, val_data = args.data, args.val_data
    if str(data) == "synthetic":
        k = len(ACTION_CLASSES)
        sets = write_synthetic_action_data(args.out / "synthetic", shift_cfg, progress=args.progress,
                                           train=(k * args.synthetic_per_class, args.seed),
                                           val=(k * max(1, args.synthetic_per_class // 4), args.seed + 10_000))
        data, val_data = sets["train"], sets["val"]
    task = make_action_task(data, shift_cfg, init=init, val_data=val_data,
                            layout="synth" if args.layout == "synthetic" else args.layout, split=args.split,
                            splits_dir=args.splits_dir, use_sound=not args.no_sound,
                            freeze_backbone=args.freeze_backbone, clip_s=args.clip_s, n_val=args.n_val,
                            seed=args.seed, progress=args.progress)
    for index in (task.train_index, task.val_index):
        if index.skipped:
            print(index.report(), file=sys.stderr)
    checkpoint = fit(task, _train_config(args))
    print(f"checkpoint: {checkpoint}")
    if launch_env()[0] == 0:  # under torchrun: one evaluation
        _evaluate_action_run(checkpoint, task.val_index, args)
    return EXIT_OK


def _evaluate_action_run(checkpoint: Path, index, args: argparse.Namespace) -> None:
    """Clip-averaged accuracy of the trained model on the validation videos: RUN/eval.json and
    RUN/confusion.png."""
    from avscene.files import write_json
    from avscene.evaluate.action import evaluate
    from avscene.report.plots import plot_confusion_matrix

    model = _load_task_model(checkpoint, args.device, "action").model
    result = evaluate(model, index, n_clips=args.eval_clips, progress=args.progress)
    write_json(args.out / "eval.json", {"checkpoint": str(checkpoint), "data": index.source,
                                        "init": str(args.init), "use_sound": not args.no_sound,
                                        "freeze_backbone": args.freeze_backbone, **result.to_dict()})
    plot_confusion_matrix(result.confusion, result.class_names, args.out / "confusion.png",
                          title=f"validation: top-1 {100 * result.top1:.1f}% over {result.n_videos} videos")
    print(f"validation: {result.describe()}")
    print(f"written: {args.out / 'eval.json'}, {args.out / 'confusion.png'}")


# -- inference on videos --------------------------------------------------------------------------


def _add_speed(p: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--channels-last`` of the inference commands."""
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="arithmetic of the network: fp32 (default) or bf16 autocast (about 2x faster on CPUs with "
                        "bf16 support; its effect on trained networks' verdicts is not yet measured)")
    p.add_argument("--channels-last", dest="channels_last", action="store_true",
                   help="channels-last 3-D video layout (try it on GPUs)")


def _add_sync(sub) -> None:
    p = sub.add_parser("sync", help="is the sound in sync? offset scan with units, sign and confidence")
    _add_videos(p)
    _add_model(p, "shift", "sync")
    _add_speed(p)
    p.add_argument("--max-offset-s", "--max-offset", dest="max_offset_s", type=float, default=2.0,
                   help="scan +-this many seconds")
    p.add_argument("--step", type=int, default=1,
                   help="coarse-to-fine scan: every STEP-th frame offset on --coarse-windows windows, then every "
                        "offset near the --refine best peaks on all windows (default 1: every offset on every "
                        "window, the full scan; `--step 2 --coarse-windows 0` found as many offsets as the full "
                        "scan on the demo network's 104 test clips at about half its cost, `--step 4` 13 points "
                        "fewer: benchmarks/results/offset_demo104_*.json)")
    p.add_argument("--refine", type=int, default=2, help="coarse peaks refined frame by frame (default 2)")
    p.add_argument("--coarse-windows", dest="coarse_windows", type=int, default=4,
                   help="windows the coarse stage scans, spread over the video (default 4; 0: all of them)")
    p.add_argument("--no-scan", dest="scan", action="store_false",
                   help="no offset scan: only the probability that the video is in sync as it is (one pass per window)")
    p.add_argument("--hop-s", "--hop", dest="hop_s", type=float, default=None,
                   help="seconds between windows (default: one clip)")
    p.add_argument("--max-windows", dest="max_windows", type=int, default=16, help="windows per video at most")
    p.add_argument("--json", type=Path, default=None, help="write the full results (scans included)")
    p.add_argument("--csv", type=Path, default=None, help="write one row per file")
    p.add_argument("--plot-dir", dest="plot_dir", type=Path, default=None, help="write <name>_sync.png scan plots")
    p.add_argument("--fix", type=Path, default=None,
                   help="write the re-synchronised video (a file; a folder when several inputs)")
    p.set_defaults(func=_cmd_sync)


def _cmd_sync(args: argparse.Namespace) -> int:
    from avscene.files import write_csv, write_json
    from avscene.infer.sync import SyncOptions, read_calibration, sync_file
    from avscene.media.writer import write_shifted_audio
    from avscene.report.plots import plot_sync_scan

    network = _load_task_model(args.model, args.device, "shift", "sync")
    provenance = _Provenance(network, "sync")
    if args.fix and not args.scan:
        print("error: --fix needs the offset, which --no-scan does not look for", file=sys.stderr)
        return EXIT_ERROR
    options = SyncOptions(max_offset_s=args.max_offset_s, hop_s=args.hop_s, max_windows=args.max_windows,
                          temperature=read_calibration(network.path, network.calibration) or 1.0,
                          step=args.step, refine=args.refine, coarse_windows=args.coarse_windows or None, scan=args.scan,
                          precision=args.precision, channels_last=args.channels_last)
    several = len(_expand_inputs(args.videos)) > 1
    if args.fix and several:
        args.fix.mkdir(parents=True, exist_ok=True)

    def one(path: Path):
        result = sync_file(network.model, path, options)
        print(f"{path}: {result.describe()}")
        if args.plot_dir:
            plot_sync_scan(result, args.plot_dir / f"{path.stem}_sync.png")
        if args.fix:
            dest = args.fix / f"{path.stem}_synced.mp4" if several else args.fix
            write_shifted_audio(path, dest, result.offset_s)
            print(f"  re-synchronised copy: {dest}")
        return result, provenance.fields(path)

    outcomes = _run_batch(args.videos, one)
    if args.json:
        write_json(args.json, [{**out[0].to_dict(), **out[1]} if error is None else {"path": str(path), "error": error}
                               for path, out, error in outcomes])
    if args.csv:
        write_csv(args.csv, [{**_sync_row(path, out and out[0], error), "network": network.id.name,
                              "network_sha256": network.id.sha256, "caveat": (out and out[1]["caveat"]) or ""}
                             for path, out, error in outcomes],
                  ["path", "offset_s", "offset_frames", "fps", "confidence", "aligned_probability", "windows",
                   "error", "network", "network_sha256", "caveat"])
    return _batch_exit(outcomes)


def _sync_row(path: Path, result, error: str | None) -> dict:
    if error is not None:
        return {"path": str(path), "error": error}
    return {"path": str(path), "offset_s": round(result.offset_s, 6), "offset_frames": result.offset_frames,
            "fps": round(float(result.fps), 6), "confidence": round(result.confidence, 4),
            "aligned_probability": round(result.aligned_probability, 4), "windows": len(result.windows),
            "error": ""}


def _add_localize(sub) -> None:
    p = sub.add_parser("localize", help="where is the sound? heat-map video, maps and peaks per frame")
    _add_videos(p)
    p.add_argument("-o", "--out-dir", dest="out_dir", type=Path, required=True,
                   help="writes <name>_cam.mp4, <name>_cam.npy, <name>_cam.json, <name>_sheet.png")
    _add_model(p, "shift", "localize")
    _add_fit(p)
    p.add_argument("--size", type=int, default=None,
                   help="side of that square in pixels (default: the model's crop); the network is fully "
                        "convolutional, so e.g. --fit pad --size 128 maps the whole picture")
    p.add_argument("--max-windows", dest="max_windows", type=int, default=None,
                   help="model windows per video at most (default: cover every frame)")
    p.add_argument("--out-size", dest="out_size", type=_out_size, default=360, metavar="PX|source",
                   help="height of the overlay video and of the map in the .npy, the width keeping the aspect "
                        "(default 360; never above the video's own; 'source': the video's own size)")
    p.add_argument("--signed", action="store_true",
                   help="map the signed CAM (evidence for sync, positive) instead of the release's |CAM|, which "
                        "also lights up silent things that move on their own")
    _add_speed(p)
    _add_overwrite(p)
    p.set_defaults(func=_cmd_localize)


def _out_size(text: str) -> int | None:
    """``--out-size``: a height in pixels (>= 16), or ``source`` (None: the video's own size)."""
    if text == "source":
        return None
    if not text.isdigit() or int(text) < 16:
        raise argparse.ArgumentTypeError(f"expected a height in pixels (>= 16) or 'source', got {text!r}")
    return int(text)


def _cmd_localize(args: argparse.Namespace) -> int:
    from avscene.files import OutputNames
    from avscene.infer.localize import CAM_OUTPUTS, LocalizeOptions, localize_file, write_cam_outputs

    network = _load_task_model(args.model, args.device, _localize_task(args.model), "localize")
    provenance = _Provenance(network, "localize")
    options = LocalizeOptions(fit=args.fit, size=args.size, max_windows=args.max_windows, out_size=args.out_size,
                              precision=args.precision, channels_last=args.channels_last, signed=args.signed)
    names = OutputNames(args.out_dir, CAM_OUTPUTS.values(), overwrite=args.overwrite)

    def one(path: Path):
        result = localize_file(network.model, path, options)
        name = names.claim(path)
        with names.all_or_nothing(name):
            paths = write_cam_outputs(result, args.out_dir, name=name, model_name=network.id.name,
                                      network=provenance.fields(path))
        print(f"{path}: {result.describe()}; wrote {paths['video']}")

    return _batch_exit(_run_batch(args.videos, one))


def _add_separate(sub) -> None:
    p = sub.add_parser("separate", help="split a video's sound into on-screen and off-screen parts")
    _add_videos(p)
    p.add_argument("-o", "--out-dir", dest="out_dir", type=Path, required=True, metavar="OUT_DIR",
                   help="writes <name>_on.wav, <name>_off.wav, <name>_on.mp4, <name>_off.mp4, <name>_spectrogram.png")
    _add_model(p, "separation", "separate")
    p.add_argument("--mask", default=None, metavar="left|right|X0,Y0,X1,Y1",
                   help="grey out this region of the frames (pixels of the video) so its sound goes off-screen")
    p.add_argument("--hop-frames", dest="hop_frames", type=int, default=None,
                   help="frames between windows (default: half a clip)")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=8, help="windows per forward pass")
    _add_speed(p)
    p.add_argument("--phase", choices=SEPARATION_PHASES, default=DEFAULT_SEPARATION_PHASE,
                   help="phase of the outputs: the mixture's (default, measured better) or the predicted one "
                        "(the release's default)")
    _add_fit(p)
    p.add_argument("--no-plot", dest="plot", action="store_false", help="no spectrogram PNG")
    _add_overwrite(p)
    p.set_defaults(func=_cmd_separate)


def _cmd_separate(args: argparse.Namespace) -> int:
    from avscene.files import OutputNames
    from avscene.infer.separate import (SEPARATION_OUTPUTS, SeparateOptions, parse_mask, separate_file,
                                        write_separation)

    options = SeparateOptions(mask=parse_mask(args.mask), hop_frames=args.hop_frames, batch_size=args.batch_size,
                              phase=args.phase, fit=args.fit, precision=args.precision,
                              channels_last=args.channels_last)
    network = _load_task_model(args.model, args.device, "separation", "separate")
    provenance = _Provenance(network, "separate")
    names = OutputNames(args.out_dir, SEPARATION_OUTPUTS, overwrite=args.overwrite)

    def one(path: Path):
        result = separate_file(network.model, path, options)
        name = names.claim(path)
        with names.all_or_nothing(name):
            written = write_separation(result, args.out_dir, name=name, plot=args.plot,
                                       network=provenance.fields(path))
        print(f"{path}: {result.describe()}")
        for kind, dest in written.items():
            print(f"  {kind}: {dest}")

    return _batch_exit(_run_batch(args.videos, one))


def _add_classify(sub) -> None:
    p = sub.add_parser("classify", help="what action does a video show? class probabilities per video")
    _add_videos(p)
    _add_model(p, "action", "classify")
    p.add_argument("--top-k", dest="top_k", type=int, default=5, help="classes listed per video")
    p.add_argument("--n-clips", "--clips", dest="n_clips", type=int, default=10,
                   help="uniformly spaced clips averaged per video")
    p.add_argument("--json", type=Path, default=None, help="write one entry per input (errors included)")
    p.set_defaults(func=_cmd_classify)


def _cmd_classify(args: argparse.Namespace) -> int:
    from avscene.files import write_json
    from avscene.infer.classify import classify_file

    if args.top_k < 1 or args.n_clips < 1:
        raise ValueError(f"--top-k and --n-clips must be >= 1, got {args.top_k} and {args.n_clips}")
    network = _load_task_model(args.model, args.device, "action", "classify")
    provenance = _Provenance(network, "classify")

    def one(path: Path):
        result = classify_file(network.model, path, n_clips=args.n_clips, top_k=args.top_k)
        top = result.top()  # [(label, name, probability)], most probable first
        print(f"{path}: " + ", ".join(f"{name} {p:.2f}" for _, name, p in top))
        return {"path": str(path), "label": result.name, "prob": round(result.probability, 6),
                "top": [{"label": name, "prob": round(p, 6)} for _, name, p in top],
                "n_clips": len(result.clip_starts_s), "clip_starts_s": [round(t, 4) for t in result.clip_starts_s],
                **provenance.fields(path)}

    outcomes = _run_batch(args.videos, one)
    if args.json:
        write_json(args.json, [row if error is None else {"path": str(path), "error": error}
                               for path, row, error in outcomes])
    return _batch_exit(outcomes)


# -- models and evaluation ------------------------------------------------------------------------


def _add_import_tf(sub) -> None:
    p = sub.add_parser("import-tf", help="import the paper's TensorFlow networks (multisensory-nets.zip) into the "
                                         "model store")
    p.add_argument("path", type=Path, metavar="PATH",
                   help="multisensory-nets.zip, its unpacked folder, or one checkpoint prefix (nets/shift/net.tf-650000)")
    p.add_argument("--name", default=None, help="store name for a single checkpoint (default: paper-shift, paper-cam, ...)")
    p.add_argument("--kind", choices=RELEASE_KINDS, default=None,
                   help="which release network a checkpoint outside the release's folders is")
    _add_quiet(p)
    p.set_defaults(func=_cmd_import_tf)


def _cmd_import_tf(args: argparse.Namespace) -> int:
    from avscene.release.importer import import_release
    from avscene.store import models_dir

    done, notes = import_release(args.path, name=args.name, kind=args.kind, progress=args.progress)
    for note in notes:
        print(f"skipped {note}", file=sys.stderr)
    for net in done:
        if net.note:
            print(f"{net.name}: {net.note} ({net.path})")
        else:
            print(f"{net.name}: {net.kind} network from {net.source}, {net.n_parameters / 1e6:.1f} M parameters, "
                  f"{net.used} variables used, {net.ignored} ignored (optimizer slots, step counter, batch-renorm "
                  f"statistics) -> {net.path}")
    print(f"model store: {models_dir()}; use them with --model NAME, list them with `avscene models`")
    return EXIT_OK


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the model store: name, task, parameters, trained on, source")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(func=_cmd_models)


def _cmd_models(args: argparse.Namespace) -> int:
    from avscene.store import list_models, models_dir

    rows = list_models()
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=1))
        return EXIT_OK
    if not rows:
        print(f"the model store ({models_dir()}) is empty: `avscene import-tf multisensory-nets.zip` fills it")
        return EXIT_OK
    print(f"model store: {models_dir()}")
    for r in rows:
        print(f"{r.name:<18} {r.task:<11} {r.n_parameters / 1e6:6.1f} M  {r.trained_on}  [{r.source}]")
    return EXIT_OK


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate trained models (separation: Table 2)")
    tasks = p.add_subparsers(dest="eval_task", required=True, metavar="TASK")
    p = tasks.add_parser("separation", help="on/off error, SDR, SIR, SAR, SI-SDR per model, by voice pairing")
    p.add_argument("--data", type=Path, required=True,
                   help="held-out synthetic separation set, a folder of videos (mixtures of two videos), "
                        "or 'synthetic' to generate one")
    p.add_argument("--model", action="append", required=True, metavar="NAME=CKPT",
                   help="a separation checkpoint (or model-store name) and its row name (repeat for several)")
    p.add_argument("--out", type=Path, required=True, help="folder for separation_eval.{json,csv,md}")
    p.add_argument("--clips-per-scene", dest="clips_per_scene", type=int, default=4)
    p.add_argument("--n-clips", dest="n_clips", type=int, default=64, help="mixtures drawn from a folder of videos")
    p.add_argument("--snr-db", dest="snr_db", type=float, nargs=2, metavar=("LO", "HI"), default=(0.0, 0.0),
                   help="on/off SNR of mixtures drawn from a folder of videos")
    p.add_argument("--synthetic-scenes", dest="synthetic_scenes", type=int, default=64,
                   help="with --data synthetic: number of held-out scenes")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=8)
    p.add_argument("--phase", choices=SEPARATION_PHASES, default=DEFAULT_SEPARATION_PHASE,
                   help="phase of the separated waveforms: the mixture's or the predicted one")
    p.add_argument("--no-mixture", dest="mixture", action="store_false", help="leave out the mixture baseline row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    _add_quiet(p)
    p.set_defaults(func=_cmd_eval_separation)


def _cmd_eval_separation(args: argparse.Namespace) -> int:
    import dataclasses

    from avscene.data.mixtures import MixtureConfig
    from avscene.data.separation_examples import separation_dataset
    from avscene.evaluate.separation import evaluate_separation
    from avscene.synth.worlds import write_synthetic_separation_data

    models, networks = {}, {}
    for spec in args.model:
        name, sep, ckpt = spec.partition("=")
        if not sep or not name or not ckpt:
            raise ValueError(f"--model takes NAME=CHECKPOINT, got {spec!r}")
        if name in models:
            raise ValueError(f"--model name {name!r} given twice")
        networks[name] = _load_task_model(ckpt, args.device, "separation")
        models[name] = networks[name].model
    cfg = next(iter(models.values())).config
    data = args.data
    if str(data) == "synthetic":
        data = write_synthetic_separation_data(args.out / "synthetic", cfg, progress=args.progress,
                                               test=(args.synthetic_scenes, args.seed + 20_000))["test"]
    dataset = separation_dataset(data, cfg, train=False, mixture=MixtureConfig(snr_db_range=tuple(args.snr_db)),
                                 seed=args.seed, length=args.n_clips, clips_per_scene=args.clips_per_scene,
                                 progress=args.progress)
    table = evaluate_separation(models, dataset, batch_size=args.batch_size, include_mixture=args.mixture,
                                phase=args.phase, progress=args.progress)
    table = dataclasses.replace(table, info={**table.info, "networks": {n: net.id.to_dict() for n, net in networks.items()}})
    written = table.write(args.out)
    print(table.to_markdown())
    print("written: " + ", ".join(str(p) for p in written.values()))
    return EXIT_OK


# -- the main job ---------------------------------------------------------------------------------


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="run the whole system on the synthetic world (the main job)")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    p.add_argument("--minutes", type=float, default=15.0,
                   help="budget: 15 takes about 15 minutes on a 2-core CPU; every step scales with it")
    p.add_argument("--clips", type=Path, default=None, help="a folder of real videos to run on too")
    p.add_argument("--preset", choices=("small", "tiny"), default="small",
                   help="model size (tiny: a smoke run in about a minute, results meaningless)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from avscene.demo import run_demo

    report = run_demo(args.out, minutes=args.minutes, clips=args.clips, seed=args.seed, preset=args.preset)
    print(f"demo done; open the results page: {report.resolve().as_uri()}")
    return EXIT_OK


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="(re)write RUN_DIR/report.html, the results page, from RUN_DIR/summary.json")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a demo's output folder (e.g. runs/demo)")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    from avscene.report.page import write_report

    print(write_report(args.run_dir))
    return EXIT_OK


# -- audio-visual correspondence (two-tower networks) ---------------------------------------------

#: ``avscene.models.two_tower.PRESETS``, ``OBJECTIVES``, ``VISUAL_KINDS`` and ``POOLS``;
#: ``avscene.infer.retrieve.BY``.
CORRESPONDENCE_PRESETS = ("paper", "small", "tiny")
CORRESPONDENCE_OBJECTIVES = ("l3", "avenet", "infonce")
CORRESPONDENCE_VISUAL, CORRESPONDENCE_POOLS, RETRIEVE_BY = ("2d", "3d"), ("mean", "max"), ("sound", "picture")


def _add_train_correspondence(tasks) -> None:
    p = tasks.add_parser("correspondence", help="two-tower audio-visual correspondence (L3-Net, AVE-Net, InfoNCE)")
    p.add_argument("--data", required=True,
                   help="folder of videos, shards from `avscene prepare` (as `train shift`), or 'synthetic'")
    p.add_argument("--val-data", dest="val_data", default=None, help="held-out videos or shards (default: ~10%%)")
    p.add_argument("--preset", choices=CORRESPONDENCE_PRESETS, default="small", help="model preset (default small)")
    p.add_argument("--objective", choices=CORRESPONDENCE_OBJECTIVES, default="infonce",
                   help="l3: fused binary head; avenet: distance-based binary; infonce: contrastive over the batch")
    p.add_argument("--visual", choices=CORRESPONDENCE_VISUAL, default=None,
                   help="visual tower: 2d over the window's middle frame (default) or 3d over the whole window")
    p.add_argument("--pool", choices=CORRESPONDENCE_POOLS, default=None, help="pooling of the picture (default max)")
    p.add_argument("--mil", action="store_true",
                   help="score the best location of the similarity map (Objects that Sound), not the pooled picture")
    p.add_argument("--hard-negatives", dest="hard_negatives", action="store_true",
                   help="each clip's own negative from the same video at another time (default: another video)")
    p.add_argument("--n-val", dest="n_val", type=int, default=64, help="held-out clips for validation")
    p.add_argument("--synthetic-scenes", dest="synthetic_scenes", type=int, default=400,
                   help="with --data synthetic: number of training scenes")
    p.add_argument("--synthetic-world", dest="synthetic_world", choices=SYNTHETIC_SYNC_WORLD_NAMES, default="pulses",
                   help="with --data synthetic: the built-in world (as `train shift`)")
    _add_train_args(p, lr=1e-3, optimizer="adamw")
    p.set_defaults(func=_cmd_train_correspondence)


def _cmd_train_correspondence(args: argparse.Namespace) -> int:
    from avscene.models.two_tower import get_preset
    from avscene.synth.worlds import write_synthetic_sync_data
    from avscene.train.correspondence import make_correspondence_task
    from avscene.train.loop import fit

    overrides = {k: v for k, v in (("visual", args.visual), ("pool", args.pool)) if v}
    model_cfg = get_preset(args.preset, objective=args.objective, mil=args.mil, **overrides)
    data, val_data = args.data, args.val_data
    if str(data) == "synthetic":
        data, val_data = write_synthetic_sync_data(args.out / "synthetic", args.synthetic_scenes, args.seed,
                                                   model_cfg, world=args.synthetic_world, progress=args.progress)
    task = make_correspondence_task(data, model_cfg, val_data=val_data, hard_negatives=args.hard_negatives,
                                    n_val=args.n_val, seed=args.seed, progress=args.progress)
    if getattr(task.train_index, "skipped", None):
        print(task.train_index.report(), file=sys.stderr)
    print(f"checkpoint: {fit(task, _train_config(args))}")
    return EXIT_OK


def _localize_task(spec: str | None) -> str:
    """The task whose network ``avscene localize --model spec`` runs: ``correspondence`` for a
    two-tower checkpoint (similarity maps), else ``shift`` (class activation maps)."""
    from avscene.checkpoints import read_card
    from avscene.store import resolve_model

    if spec is None:
        return "shift"
    return "correspondence" if read_card(resolve_model(spec)).task == "correspondence" else "shift"


def _add_retrieve(sub) -> None:
    p = sub.add_parser("retrieve", help="nearest videos by sound or by picture (two-tower correspondence network)")
    p.add_argument("--model", required=True, help="correspondence checkpoint or model-store name")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--query", type=Path, required=True, help="a video or an audio file")
    p.add_argument("--gallery", type=Path, nargs="+", required=True, help="videos or folders of videos")
    p.add_argument("--k", type=int, default=5, help="matches to keep (default 5)")
    p.add_argument("--by", choices=RETRIEVE_BY, default="sound",
                   help="sound: the query's sound against the gallery's pictures (default); picture: the reverse")
    p.add_argument("--max-windows", dest="max_windows", type=int, default=4, help="model windows per file at most")
    p.add_argument("-o", "--out-dir", dest="out_dir", type=Path, required=True,
                   help="writes <query>_retrieve.json and <query>_retrieve.png")
    _add_overwrite(p)
    _add_quiet(p)
    p.set_defaults(func=_cmd_retrieve)


def _cmd_retrieve(args: argparse.Namespace) -> int:
    from avscene.files import OutputNames
    from avscene.infer.retrieve import RETRIEVE_OUTPUTS, retrieve, write_retrieval_outputs

    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    network = _load_task_model(args.model, args.device, "correspondence")
    provenance = _Provenance(network, "retrieve")
    gallery = _expand_inputs(args.gallery)
    result = retrieve(network.model, args.query, gallery, by=args.by, max_windows=args.max_windows,
                      progress=args.progress)
    for _, error in result.skipped:
        print(f"error: {error}", file=sys.stderr)
    if not result.matches:
        raise ValueError(f"{' '.join(map(str, args.gallery))}: no usable gallery video")
    names = OutputNames(args.out_dir, RETRIEVE_OUTPUTS.values(), overwrite=args.overwrite)
    name = names.claim(args.query)
    with names.all_or_nothing(name):
        paths = write_retrieval_outputs(result, network.model, args.out_dir, name=name, k=args.k,
                                        network=provenance.fields(args.query))
    for rank, match in enumerate(result.top(args.k), 1):
        print(f"{rank}. {match.path} {match.score:.4f}")
    print(f"wrote {paths['json']} and {paths['sheet']}")
    return EXIT_SOME_FAILED if result.skipped else EXIT_OK


#: Tuning options of ``avscene objects``: float flags whose default is ObjectsOptions' own value
#: (written out here so that ``--help`` need not import the network code).
_OBJECTS_TUNING = (
    ("threshold", "detection threshold, a fraction of the video's strongest map values (default 0.6; "
                  "benchmarks/objects.py calibrates it for a network on held-out synthetic scenes)"),
    ("activity_threshold", "activity threshold: map strength in an object's box above the picture's median, same "
                           "units (default 0.5; calibrated likewise)"),
    ("box_cells", "longest side of an object's box in map cells (default 2; more for fine maps, e.g. small-cam's "
                  "8-px cells)"),
    ("snap_cells", "how far (map cells) a peak may move onto the strongest motion near it (default 1.5; 0: boxes "
                   "stay on the map's grid)"),
    ("min_offset_gain", "an object is called out of sync only when its best offset beats offset 0 by this many "
                        "logits (default 1.0; calibrated likewise)"),
    ("sound_share", "with a separator, an object is also active where its own sound carries this fraction of the "
                    "mixture's energy (default 0.01; calibrated likewise; 0: activity from the map alone)"),
)


def _add_objects(sub) -> None:
    p = sub.add_parser("objects", help="each sounding object: its track, when it sounds, its own sound and sync")
    _add_videos(p)
    p.add_argument("-o", "--out-dir", dest="out_dir", type=Path, required=True, metavar="OUT_DIR",
                   help="writes <name>_objects.json/.mp4, <name>_timeline.png, <name>_obj<K>.wav/.mp4")
    _add_model(p, "shift", "localize")
    p.add_argument("--separation-model", dest="separation_model", default=None,
                   help="on/off separation checkpoint or model-store name (default: as `avscene separate`)")
    p.add_argument("--no-separation", dest="separation", action="store_false", help="no per-object sounds")
    p.add_argument("--no-sync", dest="sync", action="store_false", help="no per-object offset scans")
    p.add_argument("--max-objects", dest="max_objects", type=int, default=4, help="objects per video at most")
    for name, help_text in _OBJECTS_TUNING:
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=float, default=None, help=help_text)
    _add_fit(p)
    p.add_argument("--size", type=int, default=None,
                   help="side of the square the picture is fitted to for the maps (default: the model's crop)")
    p.add_argument("--max-side", dest="max_side", type=int, default=384,
                   help="longest side of the picture objects are found at (memory: frames x side^2 x 3 bytes)")
    p.add_argument("--signed", action="store_true",
                   help="find objects on the signed CAM (evidence for sync) instead of |CAM|, so a silent thing "
                        "that moves on its own is not taken for a sounding one; a misaligned object has no evidence "
                        "for sync either, so check per-object sync without it")
    _add_overwrite(p)
    p.set_defaults(func=_cmd_objects)


def _cmd_objects(args: argparse.Namespace) -> int:
    from avscene.files import OutputNames
    from avscene.infer.objects import ObjectsOptions, objects_file
    from avscene.infer.objects_output import object_suffixes, write_objects_outputs

    given = {name: getattr(args, name) for name, _ in _OBJECTS_TUNING if getattr(args, name) is not None}
    if given.get("sound_share") == 0:
        given["sound_share"] = None
    options = ObjectsOptions(max_objects=args.max_objects, fit=args.fit, size=args.size, signed=args.signed, **given)
    network = _load_task_model(args.model, args.device, "shift", "localize")
    provenance = _Provenance(network, "objects")
    separator = _load_task_model(args.separation_model, args.device, "separation", "separate") if args.separation else None
    if separator is not None:
        print(f"objects: separation network {separator.id.describe()}", file=sys.stderr)
    names = OutputNames(args.out_dir, object_suffixes(args.max_objects), overwrite=args.overwrite)

    def one(path: Path):
        result, frames, audio, to_picture = objects_file(network.model, path, options, sync=args.sync,
                                                         separator=separator.model if separator else None,
                                                         max_side=args.max_side)
        name = names.claim(path)
        fields = provenance.fields(path)
        if separator is not None:
            fields["separation_network"] = separator.id.to_dict()
        with names.all_or_nothing(name):
            paths = write_objects_outputs(result, frames, audio, args.out_dir, name, to_picture=to_picture,
                                          network=fields)
        print(f"{path}: {result.describe()}; wrote {paths['json']}")

    return _batch_exit(_run_batch(args.videos, one))


#: The commands, in the order ``avscene --help`` lists them.
COMMANDS = (_add_sync, _add_localize, _add_separate, _add_classify, _add_train, _add_eval, _add_import_tf,
            _add_models, _add_prepare, _add_synth, _add_probe, _add_demo, _add_report, _add_retrieve, _add_objects)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avscene", description="Self-supervised audio-visual scene analysis (Owens & Efros 2018).")
    parser.add_argument("--version", action="version", version=f"avscene {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        return args.func(args)
    except (MediaError, FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
