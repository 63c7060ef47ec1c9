"""How far on-screen SDR can go on the separation benchmark's test clips, with oracle masks on the
mixture's STFT (the release's front end, the mixture's phase): the ceiling that check (a) of
``benchmarks/separation.py`` (>= 6 dB over the mixture) sits under.

Masks, from the true on-screen (S) and off-screen (N) STFTs:

* ``ideal_ratio_mask``: |S| / (|S| + |N|) per time-frequency bin;
* ``ideal_binary_mask``: 1 where |S| > |N|;
* ``ideal_time_gain``: one Wiener gain per STFT frame, ||S_t||^2 / (||S_t||^2 + ||N_t||^2): the best
  a separator can do that only knows *when* the visible talker speaks (lip motion) and not which
  frequencies are theirs;
* ``ideal_time_gate``: 1 in frames where the on-screen talker is louder, else 0.

Same clips as ``separation.py`` (its held-out within- and across-group scenes under ``--out``,
found and cut by its own :func:`synthetic_root` and :func:`test_dataset`; pass the same
``--train-scenes``, ``--test-scenes``, ``--seed`` and ``--clips-per-scene``), scored by the same
BSS Eval (:func:`avscene.metrics.separation.bss_eval`). Writes
``benchmarks/results/separation_oracles.json``.

    python benchmarks/separation_oracles.py [--out runs/bench/separation]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from common import write_result
from separation import synthetic_root, test_dataset

from avscene.audio.stft import istft, stft
from avscene.metrics.separation import bss_eval
from avscene.models.separation_net import get_preset


def oracle_masks(on: torch.Tensor, off: torch.Tensor, cfg) -> dict[str, torch.Tensor]:
    """The four oracle masks (F, T) of mono sources ``on``, ``off`` (N,)."""
    s, n = stft(on, cfg).abs(), stft(off, cfg).abs()  # (F, T)
    es, en = s.pow(2).sum(0), n.pow(2).sum(0)  # (T,)
    return {
        "ideal_ratio_mask": s / (s + n).clamp_min(1e-12),
        "ideal_binary_mask": (s > n).float(),
        "ideal_time_gain": (es / (es + en).clamp_min(1e-12)).expand_as(s),
        "ideal_time_gate": (es > en).float().expand_as(s),
    }


def oracle_sdr_on(example: dict, cfg) -> dict[str, float]:
    """On-screen SDR (dB) of one example (``mixture``, ``on``, ``off``: (C, N)) for the unprocessed
    mixture and each oracle mask on the mixture's STFT (mixture phase)."""
    mix, on, off = (torch.as_tensor(example[k]).double().mean(0) for k in ("mixture", "on", "off"))  # (N,)
    spec = stft(mix, cfg)  # (F, T) complex
    estimates = {"mixture": mix, **{name: istft(spec * mask, cfg, mix.shape[-1]).double()
                                    for name, mask in oracle_masks(on, off, cfg).items()}}
    return {name: float(bss_eval(on[None], est[None])[0][0]) for name, est in estimates.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/separation"), help="separation.py's --out")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--train-scenes", type=int, default=400, help="separation.py's --train-scenes")
    ap.add_argument("--test-scenes", type=int, default=64, help="separation.py's --test-scenes")
    ap.add_argument("--seed", type=int, default=0, help="separation.py's --seed")
    ap.add_argument("--clips-per-scene", type=int, default=4)
    args = ap.parse_args()
    cfg = get_preset(args.preset).spectrogram
    root = synthetic_root(args)
    sets = {f"test-{g}": root / f"test-{g}" for g in ("within", "across")}
    if not all(p.is_dir() for p in sets.values()):
        raise SystemExit(f"no test sets under {root}: run benchmarks/separation.py (same arguments) first")
    _, parts = test_dataset(sets, args)
    sdr_on: dict[str, dict[str, list[float]]] = {}
    for group, data in zip(("within", "across"), parts):
        for i in range(len(data)):
            for name, sdr in oracle_sdr_on(data[i], cfg).items():
                sdr_on.setdefault(name, {}).setdefault(group, []).append(sdr)
    table = {name: {**{g: round(float(np.mean(v)), 2) for g, v in groups.items()},
                    "all": round(float(np.mean(sum(groups.values(), []))), 2)} for name, groups in sdr_on.items()}
    gains = {name: round(row["all"] - table["mixture"]["all"], 2) for name, row in table.items() if name != "mixture"}
    for name, row in table.items():
        print(f"{name:>18}: on-screen SDR {row['all']:6.2f} dB (within {row['within']:.2f}, across {row['across']:.2f})"
              + (f", {gains[name]:+.2f} dB over the mixture" if name in gains else ""))
    write_result("separation_oracles", {"test_sets": str(root), "clips": {g: len(v) for g, v in sdr_on["mixture"].items()},
                                        "phase": "mixture", "on_screen_sdr_db": table, "gain_over_mixture_db": gains})


if __name__ == "__main__":
    main()
