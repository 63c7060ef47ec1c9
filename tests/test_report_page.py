"""The results page without a browser: escaping, links, missing files, commands, the CLI."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from avscene import cli
from avscene.report.page import gain_text, real_video_caveat, rel_path, render_report, write_report

EVIL = '<script>alert("x")</script> & \'q\''
VOID = {"meta", "img", "source", "br", "hr", "input", "link"}


class _Tags(HTMLParser):
    """Collects elements with their attributes, and checks that non-void tags nest."""

    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(text: str) -> _Tags:
    tags = _Tags()
    tags.feed(text)
    tags.close()
    assert tags.stack == [], f"unclosed: {tags.stack}"
    return tags


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def run_dir(tmp_path) -> Path:
    run = tmp_path / "run"
    for name in ("shift/curves.png", "sep/on screen.mp4", "sep/on screen.webm", "sep/off.wav", "shift/log.csv",
                 "synthetic/sync/scene_00000.mp4"):
        _touch(run / name)
    (run / "synthetic/sync/manifest.json").write_text(json.dumps({"scenes": [{"video": "scene_00000.mp4"}]}))
    summary = {
        "title": "demo " + EVIL,
        "steps": [
            {"name": "shift", "title": "Sync pretraining " + EVIL, "result": "accuracy 0.91 " + EVIL,
             "metrics": {"val_acc": 0.912345, "steps": 1500, EVIL: EVIL, "tiny": 1.5e-5},
             "images": [{"path": "shift/curves.png", "caption": "curves " + EVIL},
                        {"path": "shift/missing.png", "caption": "gone"}],
             "files": ["shift/log.csv", "shift/nothing.json"],
             "tables": [{"caption": "per clip", "columns": ["clip", "offset_s"], "rows": [["a.mp4", 0.1], ["b", -2]]},
                        [{"clip": "c", "offset_s": 1.0}, {"clip": EVIL, "extra": 3}]],
             "commands": ["avscene sync my_video.mp4 --model runs/demo/shift/checkpoint.pt --json out.json",
                          "echo '" + EVIL + "'"]},
            {"name": "separation", "title": "On/off-screen separation", "result": "SDR +4.2 dB", "status": "skipped",
             "videos": [{"path": "sep/on screen.mp4", "caption": "on-screen", "alternates": ["sep/on screen.webm"]},
                        {"path": str((Path.cwd() / "nowhere.mp4").resolve()), "caption": "absent"}],
             "audio": [{"path": "sep/off.wav", "caption": "off-screen"}, "sep/absent.wav"]},
            "not a step",
        ],
        "synthetic": {"sync": {"folder": str(run / "synthetic/sync"), "description": "2 scenes, 8 s of video"},
                      "localize": {"folder": "elsewhere/localize", "description": "not there"}},
        "real_clips": [
            {"path": "/clips/tennis.mp4", "format_name": "mov,mp4", "duration_s": 10.0, "has_video": True,
             "has_audio": True, "fps": "30/1", "fps_float": 30.0, "width": 640, "height": 360, "video_codec": "h264",
             "sample_rate": 44100, "channels": 2, "audio_codec": "aac"},
            {"path": "/clips/broken.mp4", "error": "cannot be opened " + EVIL},
        ],
        "future_key": {"note": EVIL},
    }
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_page_escapes_links_warns_and_shows_commands(run_dir):
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    text = path.read_text()
    tags = parse(text)

    # Escaping: the hostile string never appears raw, and no script element exists at all.
    assert "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;q&#x27;" in text
    assert not any(tag == "script" for tag, _ in tags.elements)
    assert EVIL in "".join(tags.text)  # ... and reads back as the original text

    # Relative links to media inside the run folder, URL-quoted; sound on; several <source>s.
    srcs = [a.get("src") for tag, a in tags.elements if tag in ("img", "source")]
    assert "shift/curves.png" in srcs
    assert "sep/on%20screen.mp4" in srcs and "sep/on%20screen.webm" in srcs
    assert "sep/off.wav" in srcs
    assert all(s and not s.startswith(("/", "file:", "http")) for s in srcs)
    videos = [a for tag, a in tags.elements if tag == "video"]
    assert videos and all("controls" in a and "muted" not in a and a.get("preload") == "metadata" for a in videos)
    types = [a.get("type") for tag, a in tags.elements if tag == "source"]
    assert "video/mp4" in types and "video/webm" in types and "audio/wav" in types
    assert any(tag == "audio" and "controls" in a for tag, a in tags.elements)
    hrefs = [a.get("href") for tag, a in tags.elements if tag == "a"]
    assert "shift/log.csv" in hrefs and "synthetic/sync" in hrefs  # absolute folder linked relatively
    assert "#step-shift" in hrefs and "#step-separation" in hrefs

    # Missing files: a visible warning in place, and a list at the top; the page still renders.
    warnings = text.count('class="warn missing"')
    assert warnings == 5
    for name in ("shift/missing.png", "shift/nothing.json", "nowhere.mp4", "sep/absent.wav", "elsewhere/localize"):
        assert name in text
    assert 'id="missing-files"' in text and "file(s) named in summary.json are missing" in text
    assert "malformed step" in text  # the bare string among the steps

    # Commands exactly as given (escaped), in a <pre>.
    assert "avscene sync my_video.mp4 --model runs/demo/shift/checkpoint.pt --json out.json" in text
    pre = text[text.index('<pre class="commands">'):]
    assert "echo &#x27;&lt;script&gt;" in pre[: pre.index("</pre>")]

    # Metrics, tables, status badge, demo stage-1 keys, unknown keys.
    assert "0.9123" in text and "1500" in text and "1.5e-05" in text
    assert "<caption>per clip</caption>" in text and "<th>extra</th>" in text
    assert '<span class="badge">skipped</span>' in text
    assert "The synthetic world" in text and "2 scenes, 8 s of video" in text
    assert "synthetic/sync/scene_00000.mp4" in srcs  # a preview of the set
    assert "tennis.mp4" in text and "640x360 @ 30.00 fps (h264)" in text and "44100 Hz x2 (aac)" in text
    assert "cannot be opened &lt;script&gt;" in text
    assert "Other results" in text and "future_key" in text

    # Atomic and deterministic: nothing left beside it, the same bytes twice.
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == []
    assert write_report(run_dir).read_text() == text


def test_page_for_the_demo_summary_of_today(tmp_path):
    """What ``avscene demo`` writes today (no steps) renders, with cwd-relative folders."""
    run = tmp_path / "runs" / "demo"
    _touch(run / "synthetic/action/scene_00000.mp4")
    (run / "synthetic/action/manifest.json").write_text(json.dumps({"scenes": [{"video": "scene_00000.mp4"}]}))
    summary = {"synthetic": {"action": {"folder": "runs/demo/synthetic/action", "description": "16 scenes"}},
               "real_clips": []}
    (run / "summary.json").write_text(json.dumps(summary))
    text = write_report(run).read_text()  # the working directory is not tmp_path: found by its tail
    tags = parse(text)
    assert 'class="warn' not in text
    assert ("a", {"href": "synthetic/action"}) in tags.elements
    assert any(tag == "source" and a["src"] == "synthetic/action/scene_00000.mp4" for tag, a in tags.elements)


def test_render_report_minimal_and_rel_path(tmp_path):
    text = render_report({}, tmp_path)
    parse(text)
    assert "<title>avscene results</title>" in text
    assert rel_path(tmp_path, tmp_path / "a b" / "c.png") == "a b/c.png"


def test_write_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no summary"):
        write_report(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        write_report(tmp_path)
    (tmp_path / "summary.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_cli_report(run_dir, tmp_path, capsys):
    assert cli.main(["report", str(run_dir)]) == cli.EXIT_OK
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    assert (run_dir / "report.html").is_file()
    assert cli.main(["report", str(tmp_path / "nothing")]) == cli.EXIT_ERROR
    assert "no summary" in capsys.readouterr().err


def _maps(run: Path, synthetic_only) -> dict:
    _touch(run / "localize/real/tennis_cam.mp4")
    return {"network": {"name": "runs/demo/shift/checkpoint.pt", "sha256": "0123456789ab",
                        "trained_on": "training data unknown", "synthetic_only": synthetic_only, "steps": None,
                        "note": "the model store has no 'paper-cam'; falling back to runs/demo/shift/checkpoint.pt"},
            "videos": [{"path": "localize/real/tennis_cam.mp4", "caption": "tennis " + EVIL}], "failed": ["x.mp4: bad"]}


def test_page_shows_each_headline_as_a_gain_over_its_baseline(tmp_path):
    headlines = {
        "separation": {"metric": "on-screen SDR", "value": 3.71, "baseline": 0.3, "unit": "dB",
                       "baseline_name": "the unprocessed mixture", "target": 3.0},
        "sync": {"metric": "offset within +-1 frame", "value": 0.8, "baseline": 3 / 121, "unit": "fraction",
                 "baseline_name": "a random guess " + EVIL},
        "action": {"metric": "top-1", "value": 0.1, "baseline": 0.125, "unit": "fraction",
                   "baseline_name": "chance (1 / 8 classes)"},
        "bad": {"metric": "broken", "value": "high", "baseline": 0.5},
    }
    steps = [{"name": k, "title": f"Step {k}", "result": "r", "headline": h} for k, h in headlines.items()]
    (tmp_path / "summary.json").write_text(json.dumps({"steps": steps}))
    text = write_report(tmp_path).read_text()
    tags = parse(text)
    words = " ".join("".join(tags.text).split())

    # In each step: result vs baseline, and the gain (a fraction's in percentage points).
    assert "on-screen SDR 3.7 dB vs 0.3 dB for the unprocessed mixture: +3.4 dB (target +3.0 dB)" in words
    assert f"offset within +-1 frame 80% vs 2.5% for a random guess {EVIL}: +77.5 points" in words
    assert "top-1 10% vs 12.5% for chance (1 / 8 classes): -2.5 points" in words
    assert text.count('class="gain met"') == 2 * 2 and text.count('class="gain unmet"') == 2  # step + table
    assert "malformed headline" in text  # shown, not fatal; and left out of the table

    # The table at the top, before the contents: one row per well-formed headline, linked.
    glance = text[text.index('id="at-a-glance"'):text.index("</section>", text.index('id="at-a-glance"'))]
    assert text.index('id="at-a-glance"') < text.index("<nav>")
    assert glance.count("<tr>") == 1 + 3
    assert 'href="#step-separation"' in glance and "yes (target +3.0 dB)" in glance
    assert '<td class="error">no</td>' in glance and "broken" not in glance
    assert "<script" not in text

    assert gain_text({"value": 2.0, "baseline": 0.5, "unit": "dB", "target": 3.0}) == ("+1.5 dB", False)
    assert gain_text({"value": 0.93, "baseline": 0.5, "unit": "fraction"}) == ("+43 points", True)
    assert gain_text({"value": 0.5, "baseline": 0.5, "unit": "fraction"}) == ("+0 points", False)
    assert gain_text({"value": float("nan"), "baseline": 0.5}) is None


@pytest.mark.parametrize("synthetic_only", [None, True, False])
def test_real_clip_maps_name_their_network_and_say_what_they_cannot_show(tmp_path, synthetic_only):
    summary = {"real_clips": [{"path": "/clips/tennis.mp4", "has_video": False, "has_audio": False}],
               "real_clip_maps": _maps(tmp_path, synthetic_only)}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    text = write_report(tmp_path).read_text()
    parse(text)
    section = text[text.index('id="real-clips"'):]
    assert "Maps made by the network <code>runs/demo/shift/checkpoint.pt</code> [<code>0123456789ab</code>]" in section
    assert "trained on: training data unknown." in section and "falling back to" in section
    assert 'src="localize/real/tennis_cam.mp4"' in section and "Could not localize: x.mp4: bad" in section
    caveat = 'id="real-clip-caveat"' in section
    assert caveat == (synthetic_only is not False)  # unknown reads as "not trained on real video"
    if caveat:  # above the maps, in plain words
        assert section.index("real-clip-caveat") < section.index("<video")
        assert "flashing shapes that beep" in section and "nothing about where the sound sources" in section
    assert real_video_caveat(False) == "" and "avscene import-tf" in real_video_caveat(None)
    # a known synthetic-only network is named as such; an unknown one is not called synthetic-only
    assert ("only on avscene&#x27;s synthetic world" in section) == bool(synthetic_only)


def test_a_file_name_no_font_can_draw_costs_no_glyph_warnings(tmp_path):
    """A title holding a name in a script the installed fonts lack (boxes in the picture) writes
    the figure without one "Glyph ... missing" warning per character."""
    import warnings

    import numpy as np

    from avscene.report.plots import plot_cam_sheet

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = plot_cam_sheet([np.zeros((16, 16, 3), np.uint8)], ["\u65e5\u672c\u8a9e clip.mp4"],
                              tmp_path / "sheet.png", title="\u30c6\u30b9\u30c8")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [w for w in caught if "Glyph" in str(w.message)]


def test_the_run_line_gives_the_minutes_per_stage_and_says_when_the_machine_was_shared(tmp_path):
    run = {"minutes": {"data": 1.5, "shift": 6.2}, "wall_minutes": 14.1, "reused": ["shift"],
           "machine": {"cpu_count": 2, "torch": "2.13.0", "load_average": [5.1, 5.5, 6.0]}}
    (tmp_path / "summary.json").write_text(json.dumps({"steps": [], "run": run}))
    words = " ".join("".join(parse(write_report(tmp_path).read_text()).text).split())
    assert "This run took 14.1 minutes on 2 CPUs (torch 2.13.0); minutes per stage: data 1.5, shift 6.2." in words
    assert "Reused from an earlier run: shift." in words and "load average 6 over the last 15 minutes" in words
    run["machine"]["load_average"] = [0.4, 0.9, 1.2]  # the demo alone: nothing to say
    (tmp_path / "summary.json").write_text(json.dumps({"steps": [], "run": run}))
    assert "shared the machine" not in write_report(tmp_path).read_text()
