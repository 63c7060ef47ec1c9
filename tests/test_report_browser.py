"""The results page in a real browser: headless Chromium opens report.html from file:// and every
video, audio file and image on it must load (and the videos decode sound).

Driven with Playwright's Python package and Debian's Chromium (``executable_path``; Playwright
never downloads a browser here). Playwright because the check is event-driven: one ``evaluate``
awaits each element's ``loadedmetadata``/``error`` and returns JSON to Python, the screenshot of the
whole page is one call, and it talks to Chromium over a pipe, with no driver binary whose version
must match. (``chromium --dump-dom`` would need a script injected into the page and virtual time,
which does not pace the media pipeline; selenium needs chromedriver and callback-style scripts.)

Chromium comes from ``make browser`` (a dependency of ``make test``); without it the test skips.
For the real demo: ``python tests/test_report_browser.py runs/demo`` checks its page and saves a
screenshot to ``benchmarks/results/report_screenshot.png``.
"""

from __future__ import annotations

import json
import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path(os.environ.get("AVSCENE_CHROMIUM", "/usr/bin/chromium"))
#: Flags for this closed network: no background connections (refused by the network), no sandbox
#: (root in CI), software rendering; autoplay so the test can play the videos without a click.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
REPO = Path(__file__).resolve().parents[1]

# Waits for every <video>/<audio> to have its metadata (or to fail), every <img> to decode, then
# plays the videos briefly to see that sound is decoded; returns what each element reports.
_CHECK_JS = """
async (timeoutMs) => {
  const settle = (m) => new Promise((resolve) => {
    const done = () => resolve();
    if (m.readyState >= 1 || m.error || m.networkState === 3) return done();
    m.addEventListener('loadedmetadata', done, {once: true});
    m.addEventListener('error', done, {once: true});
    const sources = m.querySelectorAll('source');
    if (sources.length) sources[sources.length - 1].addEventListener('error', done, {once: true});
    setTimeout(done, timeoutMs);
  });
  const media = [...document.querySelectorAll('video, audio')];
  await Promise.all(media.map(settle));
  const images = [...document.images];
  await Promise.all(images.map((i) => i.decode().catch(() => null)));
  const videos = media.filter((m) => m.tagName === 'VIDEO' && m.readyState >= 1 && !m.error);
  await Promise.all(videos.map((v) => v.play().catch((e) => { v.dataset.playError = String(e); })));
  await new Promise((r) => setTimeout(r, 700));
  videos.forEach((v) => v.pause());
  const visible = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  return {
    media: media.map((m) => ({
      tag: m.tagName.toLowerCase(), src: m.currentSrc, readyState: m.readyState, networkState: m.networkState,
      error: m.error ? `${m.error.code} ${m.error.message}` : null, duration: m.duration, muted: m.muted,
      controls: m.controls, currentTime: m.currentTime, width: m.videoWidth || 0,
      audioBytes: m.webkitAudioDecodedByteCount ?? null, videoBytes: m.webkitVideoDecodedByteCount ?? null,
      playError: m.dataset.playError || null})),
    images: images.map((i) => ({src: i.currentSrc, naturalWidth: i.naturalWidth, visible: visible(i)})),
    missingWarnings: [...document.querySelectorAll('.warn.missing')]
      .map((w) => ({text: w.textContent, visible: visible(w)})),
    caveats: [...document.querySelectorAll('.caveat')].map((w) => ({text: w.innerText, visible: visible(w),
      aboveMaps: [...w.parentElement.querySelectorAll('video')].every(
        (v) => w.compareDocumentPosition(v) & Node.DOCUMENT_POSITION_FOLLOWING)})),
    title: document.title,
  };
}
"""


def check_report(report: Path, screenshot: Path | None = None, *, timeout_s: float = 15.0) -> dict:
    """Open ``report`` (an HTML file) from file:// in headless Chromium; returns what its media,
    images, missing-file warnings and real-video caveats report (see ``_CHECK_JS``) plus
    ``console_errors``; saves a full-page PNG at ``screenshot`` when given."""
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=timeout_s * 1000)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(Path(report).resolve().as_uri(), wait_until="load", timeout=timeout_s * 1000)
            result = page.evaluate(_CHECK_JS, timeout_s * 1000)
            if screenshot is not None:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                page.evaluate("() => document.querySelectorAll('video').forEach((v) => { v.currentTime = 0.1; })")
                page.wait_for_timeout(300)
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    result["console_errors"] = errors
    return result


def media_problems(result: dict) -> list[str]:
    """What is wrong with the page, one line each; empty when every element loaded."""
    problems = [f"console: {e}" for e in result["console_errors"]]
    for m in result["media"]:
        if m["readyState"] < 1 or m["error"] or not (m["duration"] or 0) > 0:
            problems.append(f"{m['tag']} {m['src'] or '(no source)'} did not load: {m}")
        elif m["tag"] == "video" and (m["muted"] or not m["width"] or not m["audioBytes"]):
            problems.append(f"video {m['src']} plays no picture or no sound: {m}")
    problems += [f"img {i['src']} did not load" for i in result["images"] if not i["naturalWidth"] > 0]
    problems += [f"caveat not visible above the maps: {c['text'][:80]}" for c in result.get("caveats", [])
                 if not (c["visible"] and c["aboveMaps"])]
    return problems


def save_report_screenshot(run_dir: Path, dest: Path = REPO / "benchmarks/results/report_screenshot.png") -> dict:
    """Check ``run_dir/report.html`` (written first if missing) and save its screenshot at ``dest``."""
    from avscene.report.page import write_report

    report = Path(run_dir) / "report.html"
    if not report.exists():
        write_report(run_dir)
    return check_report(report, dest)


# Skipped where Chromium is missing, except in CI (CI=true), where `make test` has installed it.
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                                    reason=f"no Chromium at {CHROMIUM}: run `make browser` (Debian's chromium)")


@needs_chromium
def test_report_media_load_in_chromium(tmp_path):
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")
    assert CHROMIUM.exists(), f"CI must have Chromium at {CHROMIUM}: `make test` runs `make browser` first"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from avscene.media import write_wav
    from avscene.report.page import write_report
    from conftest import make_click_video

    run = tmp_path / "run with space"
    (run / "step one").mkdir(parents=True)
    make_click_video(run / "step one" / "clip.mp4", fps=Fraction(30000, 1001), sample_rate=21000,
                     n_frames=45, click_frame=15)  # H.264 + AAC, as write_video writes every result
    t = np.arange(21000) / 21000
    write_wav(run / "step one" / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32), 21000)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(t[:200], np.sin(2 * np.pi * 440 * t[:200]))
    fig.savefig(run / "plot.png")
    plt.close(fig)
    (run / "broken.mp4").write_bytes(b"not a video" * 100)  # present but unplayable: must be caught
    (run / "broken.png").write_bytes(b"not an image")
    summary = {"title": "browser check <&>", "steps": [{
        "name": "one", "title": "Step one", "result": "all media load",
        "metrics": {"accuracy": 0.5}, "images": [{"path": "plot.png", "caption": "a plot"}, "broken.png"],
        "videos": [{"path": "step one/clip.mp4", "caption": "click"}, "broken.mp4"],
        "audio": [{"path": "step one/tone.wav", "caption": "tone"}, {"path": "step one/gone.wav", "caption": "gone"}],
        "commands": ["avscene sync clip.mp4"]}], "synthetic": {}, "real_clips": [],
        "real_clip_maps": {"network": {"name": "shift/checkpoint.pt", "sha256": "0123456789ab",
                                       "trained_on": "training data unknown", "synthetic_only": None},
                           "videos": [{"path": "step one/clip.mp4", "caption": "a real clip's map"}]}}
    (run / "summary.json").write_text(json.dumps(summary))
    report = write_report(run)

    result = check_report(report, tmp_path / "report.png")

    problems = media_problems(result)
    assert len(problems) == 2 and "broken.mp4 did not load" in problems[0] and "broken.png" in problems[1], problems
    assert result["title"] == "browser check <&>"
    tags = sorted(m["tag"] for m in result["media"])
    assert tags == ["audio", "video", "video", "video"] and len(result["images"]) == 2
    video = next(m for m in result["media"] if m["src"].endswith("clip.mp4"))
    assert video["controls"] and not video["muted"] and video["currentTime"] > 0  # it played, with sound
    assert abs(video["duration"] - 45 / (30000 / 1001)) < 0.1
    assert result["missingWarnings"] and all(w["visible"] for w in result["missingWarnings"])
    assert "step one/gone.wav" in result["missingWarnings"][0]["text"]
    # The real videos' maps come from a network that never saw real video: the page says so, visibly, above them.
    [caveat] = result["caveats"]
    assert caveat["visible"] and caveat["aboveMaps"], caveat
    assert "flashing shapes that beep" in caveat["text"] and "avscene import-tf" in caveat["text"]
    png = (tmp_path / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python tests/test_report_browser.py RUN_DIR [SCREENSHOT.png]")
    out = save_report_screenshot(Path(sys.argv[1]), *(Path(a) for a in sys.argv[2:]))
    print(json.dumps(out, indent=1))
    problems = media_problems(out)
    print("\n".join(problems) if problems else "every video, audio file and image loaded")
    sys.exit(1 if problems else 0)
