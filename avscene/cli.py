"""The ``avscene`` command line: a thin shell over the library.

``get_parser()`` builds one sub-command per capability; ``main(argv) -> int`` runs it. Flags are
named as the keyword arguments of the functions they call. A :class:`MediaError` (or any other
error a user can act on) becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from avscene import __version__
from avscene.media import MediaError

#: Exit codes: 0 ok, 1 some inputs failed (batch went on), 2 usage or fatal error.
EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2


def _cmd_probe(args: argparse.Namespace) -> int:
    from avscene.media import probe

    failed = 0
    for path in args.files:
        try:
            info = probe(path)
        except MediaError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        print(json.dumps(info.to_dict()))
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _cmd_synth(args: argparse.Namespace) -> int:
    from avscene.synth import SceneConfig, write_dataset

    overrides = {k: v for k, v in (("width", args.size), ("height", args.size), ("duration_s", args.duration_s)) if v}
    config = SceneConfig(task=args.task, **overrides)
    manifest = write_dataset(args.out_dir, args.n, args.seed, task=args.task, config=config, progress=not args.quiet)
    print(f"wrote {args.n} {args.task} scenes: {manifest}")
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from avscene.demo import run_demo

    report = run_demo(args.out, minutes=args.minutes, clips=args.clips, seed=args.seed)
    print(f"demo done: {report}")
    return EXIT_OK


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avscene", description="Self-supervised audio-visual scene analysis (Owens & Efros 2018)."
    )
    parser.add_argument("--version", action="version", version=f"avscene {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("probe", help="describe media files as JSON lines")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.set_defaults(func=_cmd_probe)

    p = sub.add_parser("synth", help="generate a synthetic audio-visual set with ground truth")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--n", type=int, default=16, help="number of scenes (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", choices=("sync", "localize", "separation", "action"), default="sync")
    p.add_argument("--size", type=int, default=None, help="frame side in pixels")
    p.add_argument("--duration-s", dest="duration_s", type=float, default=None, help="scene length (s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("demo", help="run the whole system on the synthetic world (the main job)")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default runs/demo)")
    p.add_argument("--minutes", type=float, default=15.0, help="time budget for training steps")
    p.add_argument("--clips", type=Path, default=None, help="a folder of real videos to run on too")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        return args.func(args)
    except MediaError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
