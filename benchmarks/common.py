"""What every benchmark shares: a description of the machine and writing results as JSON."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine_info() -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import av

        info["pyav"] = av.__version__
    except ImportError:
        pass
    return info


def write_result(name: str, result: dict) -> Path:
    """Write ``result`` with the machine's description to ``benchmarks/results/<name>.json``."""
    from avscene.files import write_json

    payload = {"benchmark": name, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine_info(), **result}
    path = write_json(RESULTS / f"{name}.json", payload)
    print(f"wrote {path}")
    return path
