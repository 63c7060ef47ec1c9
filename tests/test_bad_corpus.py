"""Every file of the shared edge-case corpus (``../shared/tools/make-bad-corpus.py``: odd rates and
sizes, VFR, 1-8 channels, 8-192 kHz, many containers and codecs, truncations, bit flips, lying
headers, not-media) is described and read by the media layer as its manifest expects, or gives a
clear :class:`MediaError`: never another exception, and never a changed input."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from avscene.media import MediaError, probe, read_clip

TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "make-bad-corpus.py"


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    if not TOOL.exists():
        pytest.skip(f"{TOOL} not found (the shared folder beside the checkout)")
    out = tmp_path_factory.mktemp("corpus")
    subprocess.run([sys.executable, str(TOOL), str(out)], check=True, capture_output=True, timeout=600)
    return out, json.loads((out / "manifest.json").read_text())


def _cases(manifest: dict) -> list[dict]:
    """The cases a test process can run: not the FIFO (opening one blocks; the media layer refuses
    it before opening, see test_media), not the unreadable file when running as root."""
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    return [c for c in manifest["cases"] if c.get("kind") != "fifo" and not (root and c.get("skip_if_root"))]


def _read_start(path: Path) -> str:
    """'ok' if a short window from the start reads (as much of each stream as the file has),
    'error' for a MediaError; anything else propagates and fails the test."""
    info = probe(path)
    try:
        read_clip(path, 0.0, min(1.0, max(0.05, info.duration_s / 2)), fps=30000 / 1001 if info.has_video else None,
                  size=32 if info.has_video else None, sample_rate=21000 if info.has_audio else None,
                  channels=2 if info.has_audio else None, video=info.has_video, audio=info.has_audio)
    except MediaError:
        return "error"
    return "ok"


def test_every_case_is_read_as_expected_or_refused_clearly(corpus):
    root, manifest = corpus
    wrong = []
    for case in _cases(manifest):
        path = root / case["file"]
        try:
            got = _read_start(path)
        except MediaError:
            got = "error"
        if case["expect"] == "decode" and got != "ok":
            wrong.append(f"{case['file']}: expected to decode ({case['why']})")
        if case["expect"] == "error" and got == "ok" and not case.get("lenient"):
            wrong.append(f"{case['file']}: expected a clear error ({case['why']})")
    assert not wrong, "\n".join(wrong)


def test_inputs_are_never_modified(corpus):
    root, manifest = corpus
    for case in _cases(manifest):
        path = root / case["file"]
        if case.get("sha256") and path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == case["sha256"], case["file"]
