"""The results page: ``RUN_DIR/summary.json`` rendered as ``RUN_DIR/report.html``.

The page is static and self-contained: inline CSS, no script, no font, no CDN, so it opens from
``file://`` on a machine without network. Media are not embedded but linked by paths relative to
the run folder (``<video controls>`` with sound, ``<audio controls>``, ``<img>``), so the folder
can be moved or zipped as a whole. A file that is named but missing is shown as a visible warning
where it would have been; the page never fails because of one. Every text from the summary is
HTML-escaped. ``write_report(run_dir)`` writes it atomically; ``avscene report RUN_DIR`` calls it.

summary.json (every key optional; unknown keys are kept and shown as JSON at the end)::

    {
      "title": "avscene demo",                       page title
      "steps": [Step, ...],                          one section each, in order
      "synthetic": {task: {"folder", "description"}},  the generated sets (demo stage 1)
      "real_clips": [MediaInfo.to_dict() | {"path", "error"}],  the probed real videos
      "real_clip_maps": RealClipMaps,                sound-source maps of those videos, and by whom
      "run": {"minutes": {stage: minutes}, "wall_minutes", "reused": [step names], "machine": {...}}
    }

A :class:`Step` is one stage of the demo (its fields below); its :class:`Headline`, the result
against its baseline and the gain, heads its section and the table at the top of the page. The
real videos' maps are shown under the network that made them, with a caveat unless its card says
it learnt from real video (:func:`real_video_caveat`). Paths of media are relative to the run
folder, with ``/`` separators (:func:`rel_path` makes one); absolute paths and paths relative to
the working directory the demo ran in are accepted too, and linked relatively.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any, NotRequired, TypedDict
from urllib.parse import quote

from avscene.cards import SYNTHETIC_ONLY_WARNING
from avscene.files import write_text

__all__ = ["Headline", "MediaItem", "RealClipMaps", "Step", "Summary", "Table", "gain_text", "real_video_caveat",
           "rel_path", "render_report", "write_report"]


class MediaItem(TypedDict):
    """An image, video, audio or other file of a step. A bare string is read as ``{"path": it}``."""

    path: str  # relative to the run folder: "shift/curves.png"
    caption: NotRequired[str]
    #: other encodings of the same video, offered as further <source>s (e.g. a WebM copy)
    alternates: NotRequired[list[str]]


class Table(TypedDict):
    """A table. ``rows`` are lists (in ``columns`` order) or dicts (keyed by column; without
    ``columns`` the keys of the rows, in order of appearance). A bare list is read as ``{"rows": it}``."""

    rows: list[list[Any] | dict[str, Any]]
    caption: NotRequired[str]
    columns: NotRequired[list[str]]


class Headline(TypedDict):
    """A step's result against what it must beat: ``value`` and ``baseline`` in ``unit``
    ("dB", or "fraction" for rates shown as percentages); the gain is ``value - baseline`` and
    counts as met when it is above ``target`` (0 by default)."""

    metric: str  # "on-screen SDR"
    value: float
    baseline: float
    baseline_name: str  # "the unprocessed mixture", "chance (1 / 8 classes)"
    unit: NotRequired[str]
    target: NotRequired[float]


class Step(TypedDict):
    """One stage of the demo and what it produced."""

    name: str  # short id, used as the section's anchor: "shift"
    title: str  # "Audio-visual sync pretraining"
    result: str  # one line: "held-out sync accuracy 0.91 (chance 0.50) after 1500 steps"
    headline: NotRequired[Headline]
    status: NotRequired[str]  # "ok" (default), "skipped", "failed", ...: shown when not "ok"
    notes: NotRequired[list[str]]  # paragraphs
    metrics: NotRequired[dict[str, Any]]  # name -> number or text
    images: NotRequired[list[MediaItem]]  # png/jpg/svg
    videos: NotRequired[list[MediaItem]]  # mp4 (H.264 + AAC), with sound
    audio: NotRequired[list[MediaItem]]  # wav
    tables: NotRequired[list[Table]]
    files: NotRequired[list[MediaItem]]  # other results to download: csv, json, checkpoints
    commands: NotRequired[list[str]]  # exact shell commands that redo the step on one's own videos


class RealClipMaps(TypedDict):
    """The sound-source maps of the real videos and the network that made them. ``network`` is
    :meth:`avscene.cards.NetworkId.to_dict` with ``note`` (why this network) added; unless its
    ``synthetic_only`` is False (trained on real video) the page says the maps mean nothing there."""

    network: dict[str, Any]
    videos: NotRequired[list[MediaItem]]
    images: NotRequired[list[MediaItem]]
    failed: NotRequired[list[str]]


class Summary(TypedDict, total=False):
    title: str
    steps: list[Step]
    synthetic: dict[str, dict[str, str]]
    real_clips: list[dict[str, Any]]
    real_clip_maps: RealClipMaps
    run: dict[str, Any]  # how long each stage took, on what machine


_KNOWN_KEYS = ("title", "steps", "synthetic", "real_clips", "real_clip_maps", "run")
_VIDEO_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".ogv": "video/ogg",
                ".mov": "video/quicktime"}
_AUDIO_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac",
                ".flac": "audio/flac", ".ogg": "audio/ogg", ".opus": "audio/ogg", ".webm": "audio/webm"}

_CSS = """
:root { color-scheme: light; --fg: #1d232b; --muted: #5b6673; --line: #d9dee4; --bg2: #f4f6f8;
  --accent: #1f5fae; --warn-bg: #fff3cd; --warn-fg: #6b4e00; --bad: #a4262c; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 1.5rem 1.25rem 4rem; color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 2.5rem 0 .25rem; padding-top: .75rem; border-top: 1px solid var(--line); }
h3 { font-size: 1rem; margin: 1.25rem 0 .4rem; color: var(--muted); }
a { color: var(--accent); }
p.sub { color: var(--muted); margin-top: 0; }
p.result { font-size: 1.05rem; margin: .25rem 0 .75rem; }
.badge { display: inline-block; font-size: .75rem; padding: .05rem .5rem; border-radius: 1rem;
  background: var(--bad); color: #fff; vertical-align: middle; margin-left: .5rem; }
.warn { background: var(--warn-bg); color: var(--warn-fg); border: 1px solid #e8d48a; border-radius: 6px;
  padding: .5rem .75rem; margin: .5rem 0; }
.warn code { color: inherit; }
table { border-collapse: collapse; margin: .25rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: var(--bg2); font-weight: 600; }
td.error { color: var(--bad); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.gain { font-weight: 600; } .gain.met { color: #1b6e2a; } .gain.unmet { color: var(--bad); }
p.headline { font-size: 1.1rem; margin: .25rem 0; }
.caveat { font-size: 1rem; border-width: 2px; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: .25rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 1rem; }
figure { margin: 0; }
figure img, figure video { display: block; width: 100%; height: auto; background: #000;
  border: 1px solid var(--line); border-radius: 4px; image-rendering: auto; }
.grid.images { grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); }
figure img { background: #fff; width: auto; max-width: 100%; }
figure audio { width: 100%; }
figcaption { font-size: .85rem; color: var(--muted); margin-top: .3rem; }
figcaption a { font-size: .8rem; }
pre { background: var(--bg2); border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem;
  overflow-x: auto; font-size: .85rem; line-height: 1.4; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; }
nav ol { padding-left: 1.2rem; } nav li { margin: .15rem 0; } nav .r { color: var(--muted); }
footer { margin-top: 3rem; color: var(--muted); font-size: .8rem; }
"""


def rel_path(run_dir: str | os.PathLike, path: str | os.PathLike) -> str:
    """``path`` relative to ``run_dir`` with ``/`` separators: what a step's media entry holds."""
    rel = os.path.relpath(Path(path).resolve(), Path(run_dir).resolve())
    return Path(rel).as_posix()


def write_report(run_dir: str | os.PathLike) -> Path:
    """Render ``run_dir/summary.json`` to ``run_dir/report.html`` (atomically); returns its path.

    Raises ``FileNotFoundError`` when there is no summary and ``ValueError`` when it is not a
    JSON object; anything else odd in it (a missing file, a malformed step) shows on the page.
    """
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{summary_path}: no summary to report on (run `avscene demo --out {run_dir}` first)")
    try:
        summary = json.loads(summary_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{summary_path}: not valid JSON ({err})") from None
    if not isinstance(summary, dict):
        raise ValueError(f"{summary_path}: expected a JSON object at the top, got {type(summary).__name__}")
    return write_text(run_dir / "report.html", render_report(summary, run_dir))


def render_report(summary: dict, run_dir: str | os.PathLike) -> str:
    """The page for ``summary`` as HTML text; media paths are checked and linked from ``run_dir``."""
    page = _Page(Path(run_dir))
    return page.render(summary)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """A value as short text: floats to 4 significant digits (no trailing zeros), JSON for containers."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return "0"
        magnitude = math.floor(math.log10(abs(value)))
        if magnitude < -3 or magnitude >= 9:
            return f"{value:.4g}"
        text = f"{value:.{max(0, 3 - magnitude)}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_" else "-" for c in str(text).lower())
    return keep.strip("-") or "step"


def _percent(fraction: float, sign: str = "") -> str:
    """0.125 -> "12.5", 0.8 -> "80" (to 0.1, no trailing zero); ``sign="+"`` writes the sign."""
    text = f"{100 * fraction:{sign}.1f}"
    return text[:-2] if text.endswith(".0") else text


def _amount(value: float, unit: str) -> str:
    """A headline number: a fraction as a percentage, dB to 0.1."""
    if unit == "fraction":
        return f"{_percent(value)}%"
    return f"{value:.1f} {unit}".rstrip()


def gain_text(headline: dict) -> tuple[str, bool] | None:
    """``("+3.4 dB", met)`` for a :class:`Headline` (a fraction's gain in percentage points);
    None when it is malformed (a value or baseline missing, not a number, or not finite)."""
    verdict = _verdict(headline)
    return None if verdict is None else verdict[:2]


def _verdict(h: dict) -> tuple[str, bool, str] | None:
    """(gain as text, whether it beats the target, the target as text or "")."""
    value, baseline, target = h.get("value"), h.get("baseline"), h.get("target", 0.0)
    if not all(_is_num(v) and math.isfinite(v) for v in (value, baseline)):
        return None
    target = target if _is_num(target) and math.isfinite(target) else 0.0
    unit = str(h.get("unit", ""))

    def signed(x: float) -> str:
        if unit == "fraction":
            return f"{_percent(x, '+')} points"
        return f"{x:+.1f} {unit}".rstrip()

    return signed(value - baseline), value - baseline > target, signed(target) if target else ""


#: Said above maps of real video made by a network whose card does not say it learnt from real video.
_SYNTHETIC_WORLD_MAPS = ("The maps show where a network of the synthetic world would look for flashing shapes that "
                         "beep; they say nothing about where the sound sources of a real video are.")


def real_video_caveat(synthetic_only: bool | None) -> str:
    """What a page must say about a network's maps of real video: "" when its card says it learnt
    from real video (``synthetic_only`` False); otherwise (True, or None: unknown) that they mean
    nothing there, and how to get networks that do."""
    if synthetic_only is False:
        return ""
    if synthetic_only:
        first = SYNTHETIC_ONLY_WARNING[0].upper() + SYNTHETIC_ONLY_WARNING[1:] + "."
    else:
        first = ("Nothing says this network was trained on real video (its card reads \"training data "
                 "unknown\"), and the demo trains its networks on avscene's synthetic world only (flashes and "
                 "beeps): treat its results on real video as not meaningful. Networks trained on real video: "
                 "`avscene import-tf multisensory-nets.zip` (the paper's), or `avscene train ... --data YOUR_VIDEOS`.")
    return f"{first} {_SYNTHETIC_WORLD_MAPS}"


class _Page:
    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.missing: list[str] = []

    # --- paths ---------------------------------------------------------------------------------
    def locate(self, path: str) -> Path | None:
        """The file ``path`` names: under the run folder, as given (absolute or relative to the
        working directory), or, for a run folder that moved, the longest tail of it under the run
        folder. None when it is nowhere."""
        p = Path(path)
        candidates = [p] if p.is_absolute() else [self.run_dir / p, p]
        candidates += [self.run_dir.joinpath(*p.parts[i:]) for i in range(1, len(p.parts))
                       if p.parts[i] not in ("..", p.anchor)]
        return next((c for c in candidates if c.exists()), None)

    def href(self, path: str) -> tuple[str | None, str]:
        """(escaped relative URL, escaped display path) of ``path``; the URL is None when missing."""
        found = self.locate(path)
        if found is None:
            self.missing.append(path)
            return None, _e(path)
        rel = os.path.relpath(found.resolve(), self.run_dir.resolve())
        return _e(quote(Path(rel).as_posix(), safe="/")), _e(path)

    def warn_missing(self, kind: str, shown: str) -> str:
        return f'<div class="warn missing">missing {kind}: <code>{shown}</code></div>'

    # --- pieces --------------------------------------------------------------------------------
    @staticmethod
    def _items(items: Any) -> list[dict]:
        if items is None:
            return []
        if not isinstance(items, list):
            items = [items]
        return [{"path": it} if isinstance(it, str) else it for it in items
                if isinstance(it, (str, dict)) and (isinstance(it, str) or it.get("path"))]

    def media(self, step: dict, key: str) -> str:
        figures = []
        for item in self._items(step.get(key)):
            url, shown = self.href(str(item["path"]))
            caption = _e(item.get("caption", ""))
            if url is None:
                kind = {"images": "image", "videos": "video", "audio": "audio file"}[key]
                figures.append(f"<figure>{self.warn_missing(kind, shown)}<figcaption>{caption}</figcaption></figure>")
                continue
            link = f' <a href="{url}">{shown}</a>'
            if key == "images":
                body = f'<a href="{url}"><img src="{url}" alt="{caption or shown}"></a>'
            elif key == "videos":
                sources = [self._source(url, str(item["path"]), _VIDEO_TYPES)]
                for alt in item.get("alternates") or []:
                    alt_url, _ = self.href(str(alt))
                    if alt_url is None:
                        continue  # the main source is there; a missing alternate is listed at the end
                    sources.append(self._source(alt_url, str(alt), _VIDEO_TYPES))
                body = (f'<video controls preload="metadata" playsinline>{"".join(sources)}'
                        f'Your browser cannot play this video: <a href="{url}">download it</a>.</video>')
            else:
                sources = self._source(url, str(item["path"]), _AUDIO_TYPES)
                body = f'<audio controls preload="metadata">{sources}<a href="{url}">download</a></audio>'
            figures.append(f"<figure>{body}<figcaption>{caption}{link}</figcaption></figure>")
        if not figures:
            return ""
        return f'<div class="grid {key}">{"".join(figures)}</div>'

    @staticmethod
    def _source(url: str, path: str, types: dict[str, str]) -> str:
        mime = types.get(Path(path).suffix.lower())
        return f'<source src="{url}"' + (f' type="{mime}"' if mime else "") + ">"

    def files(self, step: dict) -> str:
        links = []
        for item in self._items(step.get("files")):
            url, shown = self.href(str(item["path"]))
            caption = _e(item.get("caption", ""))
            if url is None:
                links.append(f"<li>{self.warn_missing('file', shown)}</li>")
            else:
                links.append(f'<li><a href="{url}">{shown}</a>' + (f" — {caption}" if caption else "") + "</li>")
        return f'<h3>Files</h3><ul class="files">{"".join(links)}</ul>' if links else ""

    @staticmethod
    def table(table: Any) -> str:
        if isinstance(table, list):
            table = {"rows": table}
        if not isinstance(table, dict) or not isinstance(table.get("rows"), list):
            return f'<div class="warn">malformed table: <code>{_e(_fmt(table))}</code></div>'
        rows = table["rows"]
        columns = [str(c) for c in table.get("columns") or []]
        if not columns and any(isinstance(r, dict) for r in rows):
            columns = list(dict.fromkeys(k for r in rows if isinstance(r, dict) for k in r))
        head = "".join(f"<th>{_e(c)}</th>" for c in columns)
        body = []
        for row in rows:
            cells = [row.get(c, "") for c in columns] if isinstance(row, dict) else \
                list(row) if isinstance(row, (list, tuple)) else [row]
            body.append("<tr>" + "".join(
                f'<td class="num">{_e(_fmt(v))}</td>' if _is_num(v) else f"<td>{_e(_fmt(v))}</td>"
                for v in cells) + "</tr>")
        caption = f"<caption>{_e(table['caption'])}</caption>" if table.get("caption") else ""
        thead = f"<thead><tr>{head}</tr></thead>" if head else ""
        return f'<table class="data">{caption}{thead}<tbody>{"".join(body)}</tbody></table>'

    @staticmethod
    def metrics(metrics: Any) -> str:
        if not metrics:
            return ""
        if not isinstance(metrics, dict):
            return f'<div class="warn">malformed metrics: <code>{_e(_fmt(metrics))}</code></div>'
        rows = "".join(f"<tr><th>{_e(k)}</th>" + (f'<td class="num">{_e(_fmt(v))}</td>' if _is_num(v)
                                                  else f"<td>{_e(_fmt(v))}</td>") + "</tr>"
                       for k, v in metrics.items())
        return f'<table class="metrics"><tbody>{rows}</tbody></table>'

    @staticmethod
    def commands(commands: Any) -> str:
        if not commands:
            return ""
        if isinstance(commands, str):
            commands = [commands]
        text = "\n".join(_e(c) for c in commands)
        return f'<h3>Run it on your own videos</h3><pre class="commands"><code>{text}</code></pre>'

    @staticmethod
    def headline(step: dict) -> str:
        """'on-screen SDR 3.7 dB vs 0.3 dB for the unprocessed mixture: +3.4 dB'."""
        h = step.get("headline")
        if not h:
            return ""
        verdict = _verdict(h)
        if verdict is None:
            return f'<div class="warn">malformed headline: <code>{_e(_fmt(h))}</code></div>'
        gain, met, goal = verdict
        unit = str(h.get("unit", ""))
        return (f'<p class="headline">{_e(h.get("metric", "result"))} <strong>{_e(_amount(h["value"], unit))}</strong> '
                f'vs {_e(_amount(h["baseline"], unit))} for {_e(h.get("baseline_name", "the baseline"))}: '
                f'<span class="gain {"met" if met else "unmet"}">{_e(gain)}</span>'
                + (f" (target {_e(goal)})" if goal else "") + "</p>")

    @staticmethod
    def glance(steps: list, anchors: list[str]) -> str:
        """The table at the top: every step with a headline, its result, baseline and gain."""
        rows = []
        for anchor, step in zip(anchors, steps):
            h = step.get("headline") if isinstance(step, dict) else None
            verdict = _verdict(h) if isinstance(h, dict) else None
            if verdict is None:
                continue
            gain, met, goal = verdict
            unit = str(h.get("unit", ""))
            answer = ("yes" if met else "no") + (f" (target {goal})" if goal else "")
            cls = "" if met else ' class="error"'
            rows.append(f'<tr><td><a href="#{anchor}">{_e(step.get("title") or step.get("name"))}</a></td>'
                        f'<td>{_e(h.get("metric", ""))}</td><td class="num">{_e(_amount(h["value"], unit))}</td>'
                        f'<td>{_e(_amount(h["baseline"], unit))}: {_e(h.get("baseline_name", ""))}</td>'
                        f'<td class="num"><span class="gain {"met" if met else "unmet"}">{_e(gain)}</span></td>'
                        f"<td{cls}>{_e(answer)}</td></tr>")
        if not rows:
            return ""
        return ('<section id="at-a-glance"><h2>Each capability against its baseline</h2>'
                '<p class="sub">Measured by this run on held-out synthetic data.</p><table class="glance"><thead><tr>'
                '<th>capability</th><th>measure</th><th>result</th><th>baseline</th><th>gain</th><th>beats it?</th>'
                f'</tr></thead><tbody>{"".join(rows)}</tbody></table></section>')

    @staticmethod
    def run_line(run: Any) -> str:
        """'This run took 12.3 minutes on 2 CPUs (torch 2.13.0): data 1.7, shift 4.2, ... minutes.'"""
        if not isinstance(run, dict):
            return f'<div class="warn">malformed "run": <code>{_e(_fmt(run))}</code></div>' if run else ""
        machine = run.get("machine") if isinstance(run.get("machine"), dict) else {}
        minutes = run.get("minutes") if isinstance(run.get("minutes"), dict) else {}
        stages = ", ".join(f"{k} {_fmt(v)}" for k, v in minutes.items() if _is_num(v))
        wall = run.get("wall_minutes")
        text = (f"This run took {_fmt(wall)} minutes" if _is_num(wall) else "This run")
        if machine.get("cpu_count"):
            text += f" on {machine['cpu_count']} CPUs (torch {machine.get('torch', '?')})"
        text += f"; minutes per stage: {stages}." if stages else "."
        if run.get("reused"):
            text += f" Reused from an earlier run: {', '.join(map(str, run['reused']))}."
        load, cpus = machine.get("load_average"), machine.get("cpu_count")
        if isinstance(load, list) and load and _is_num(load[-1]) and _is_num(cpus) and load[-1] > cpus:
            text += (f" Other work shared the machine (load average {_fmt(load[-1])} over the last 15 minutes on "
                     f"{cpus} CPUs): the demo alone takes less.")
        return f'<p class="sub" id="run">{_e(text)}</p>'

    def real_clip_maps(self, maps: Any) -> str:
        """The real videos' maps under the network that made them, and what they can show."""
        if not maps:
            return ""
        if not isinstance(maps, dict) or not isinstance(maps.get("network"), dict):
            return f'<div class="warn">malformed "real_clip_maps": <code>{_e(_fmt(maps))}</code></div>'
        net = maps["network"]
        steps = net.get("steps")
        trained = str(net.get("trained_on") or "training data unknown") + (f", {steps} steps" if steps else "")
        sha = f' [<code>{_e(net["sha256"])}</code>]' if net.get("sha256") else ""
        parts = ["<h3>Where the sound is, in the real videos</h3>",
                 f'<p class="network">Maps made by the network <code>{_e(net.get("name", "?"))}</code>{sha}, '
                 f"trained on: {_e(trained)}.</p>"]
        if net.get("note"):
            parts.append(f'<p class="sub">{_e(net["note"])}</p>')
        caveat = real_video_caveat(net.get("synthetic_only"))
        if caveat:
            parts.append(f'<div class="warn caveat" id="real-clip-caveat"><strong>What these maps can and cannot '
                         f"show.</strong> {_e(caveat)}</div>")
        parts += [self.media(maps, "videos"), self.media(maps, "images")]
        failed = maps.get("failed") or []
        if failed:
            parts.append(f'<div class="warn">Could not localize: {_e("; ".join(map(str, failed)))}</div>')
        return "\n".join(p for p in parts if p)

    # --- sections ------------------------------------------------------------------------------
    def step(self, step: Any, index: int, anchor: str) -> str:
        if not isinstance(step, dict):
            return (f'<section id="{anchor}"><h2>Step {index + 1}</h2>'
                    f'<div class="warn">malformed step: <code>{_e(_fmt(step))}</code></div></section>')
        title = _e(step.get("title") or step.get("name") or f"Step {index + 1}")
        status = str(step.get("status", "ok"))
        badge = f' <span class="badge">{_e(status)}</span>' if status.lower() != "ok" else ""
        notes = step.get("notes") or []
        notes = [notes] if isinstance(notes, str) else notes
        parts = [f'<section class="step" id="{anchor}"><h2>{title}{badge}</h2>',
                 self.headline(step),
                 f'<p class="result">{_e(step.get("result", ""))}</p>',
                 *(f"<p>{_e(n)}</p>" for n in notes),
                 self.metrics(step.get("metrics"))]
        for key in ("images", "videos", "audio"):
            block = self.media(step, key)
            if block:
                parts.append(block)
        tables = step.get("tables") or []
        tables = [tables] if isinstance(tables, dict) else tables
        parts += [self.table(t) for t in tables]
        parts += [self.files(step), self.commands(step.get("commands")), "</section>"]
        return "\n".join(p for p in parts if p)

    def synthetic(self, sets: Any) -> str:
        if not sets:
            return ""
        if not isinstance(sets, dict):
            return f'<div class="warn">malformed "synthetic": <code>{_e(_fmt(sets))}</code></div>'
        rows, previews = [], []
        for task, info in sets.items():
            info = info if isinstance(info, dict) else {"description": info}
            folder = str(info.get("folder", ""))
            found = self.locate(folder) if folder else None
            url, shown = self.href(folder) if folder else (None, "")
            where = f'<a href="{url}">{shown}</a>' if url else (self.warn_missing("folder", shown) if folder else "")
            rows.append(f"<tr><th>{_e(task)}</th><td>{_e(info.get('description', ''))}</td><td>{where}</td></tr>")
            preview = self._first_scene(found)
            if preview:
                previews.append({"path": preview, "caption": f"{task}: first scene"})
        out = ['<section id="synthetic"><h2>The synthetic world</h2>',
               '<p class="sub">Generated scenes with ground truth (object boxes and masks, sound '
               'events, on/off-screen sources, labels), one set per task.</p>',
               '<table class="sets"><thead><tr><th>task</th><th>set</th><th>folder</th></tr></thead>'
               f'<tbody>{"".join(rows)}</tbody></table>']
        if previews:
            out.append(self.media({"videos": previews}, "videos"))
        out.append("</section>")
        return "\n".join(out)

    def _first_scene(self, folder: Path | None) -> str | None:
        try:
            manifest = json.loads((folder / "manifest.json").read_text()) if folder else None
            video = folder / manifest["scenes"][0]["video"]
        except (OSError, ValueError, KeyError, IndexError, TypeError):
            return None
        return str(video) if video.exists() else None

    def real_clips(self, clips: Any, maps: Any = None) -> str:
        if not clips and not maps:
            return ""
        clips = clips or []
        if not isinstance(clips, list):
            return f'<div class="warn">malformed "real_clips": <code>{_e(_fmt(clips))}</code></div>'
        rows = []
        for clip in clips:
            if not isinstance(clip, dict):
                rows.append(f'<tr><td colspan="5">{_e(_fmt(clip))}</td></tr>')
                continue
            name = _e(Path(str(clip.get("path", "?"))).name)
            if clip.get("error"):
                rows.append(f'<tr><td>{name}</td><td colspan="4" class="error">{_e(clip["error"])}</td></tr>')
                continue
            fps = clip.get("fps_float")
            fps = f"{fps:.2f}" if _is_num(fps) else "?"
            picture = (f"{clip.get('width')}x{clip.get('height')} @ {fps} fps"
                       f" ({clip.get('video_codec') or '?'})") if clip.get("has_video") else "no video"
            sound = (f"{clip.get('sample_rate')} Hz x{clip.get('channels')} ({clip.get('audio_codec') or '?'})"
                     if clip.get("has_audio") else "no audio")
            duration = clip.get("duration_s")
            rows.append(f"<tr><td>{name}</td><td>{_e(clip.get('format_name', ''))}</td>"
                        f'<td class="num">{_e(_fmt(duration))} s</td><td>{_e(picture)}</td><td>{_e(sound)}</td></tr>')
        table = ('<p class="sub">The videos given with <code>--clips</code>, as probed.</p><table class="clips">'
                 '<thead><tr><th>file</th><th>container</th><th>duration</th><th>picture</th><th>sound</th></tr>'
                 f'</thead><tbody>{"".join(rows)}</tbody></table>') if rows else ""
        return f'<section id="real-clips"><h2>Real videos</h2>{table}{self.real_clip_maps(maps)}</section>'

    def render(self, summary: dict) -> str:
        title = _e(summary.get("title") or "avscene results")
        steps = summary.get("steps") or []
        if not isinstance(steps, list):
            steps = [steps]
        anchors, used = [], set()
        for i, step in enumerate(steps):
            base = "step-" + _slug(step.get("name", i + 1) if isinstance(step, dict) else i + 1)
            anchor, n = base, 2
            while anchor in used:
                anchor, n = f"{base}-{n}", n + 1
            used.add(anchor)
            anchors.append(anchor)
        body = [self.step(step, i, anchors[i]) for i, step in enumerate(steps)]
        body.append(self.synthetic(summary.get("synthetic")))
        body.append(self.real_clips(summary.get("real_clips"), summary.get("real_clip_maps")))
        extra = {k: v for k, v in summary.items() if k not in _KNOWN_KEYS}
        if extra:
            body.append('<section id="other"><h2>Other results</h2><pre><code>'
                        f"{_e(json.dumps(extra, indent=2, default=str))}</code></pre></section>")
        toc = []
        for anchor, step in zip(anchors, steps):
            step = step if isinstance(step, dict) else {}
            result = f' <span class="r">— {_e(step["result"])}</span>' if step.get("result") else ""
            toc.append(f'<li><a href="#{anchor}">{_e(step.get("title") or step.get("name") or anchor)}</a>{result}</li>')
        if summary.get("synthetic"):
            toc.append('<li><a href="#synthetic">The synthetic world</a></li>')
        if summary.get("real_clips") or summary.get("real_clip_maps"):
            toc.append('<li><a href="#real-clips">Real videos</a></li>')
        missing = ""
        if self.missing:
            listed = "".join(f"<li><code>{_e(m)}</code></li>" for m in dict.fromkeys(self.missing))
            missing = (f'<div class="warn" id="missing-files">{len(dict.fromkeys(self.missing))} file(s) named in '
                       f"summary.json are missing from <code>{_e(self.run_dir)}</code>:<ul>{listed}</ul></div>")
        return "\n".join([
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{title}</title><style>{_CSS}</style></head><body>",
            f"<header><h1>{title}</h1><p class=\"sub\">Audio-visual scene analysis with self-supervised "
            "multisensory features (Owens &amp; Efros, ECCV 2018), reproduced by avscene.</p></header>",
            missing,
            self.glance(steps, anchors),
            self.run_line(summary.get("run")),
            f'<nav><ol>{"".join(toc)}</ol></nav>' if toc else "",
            *[b for b in body if b],
            "<footer>Written by <code>avscene report</code> from summary.json; media are linked, "
            "not embedded: keep this page in its folder.</footer>",
            "</body></html>",
            "",
        ])
