"""``report.html``: one page to read and listen to a result, with no network access.

The page links the WAVs and figures written next to it (relative paths, so the folder can be
moved or zipped) and holds everything else itself: styles inline, no scripts, no fonts or
libraries fetched from anywhere. Each audio player sits beside what the model made of that
audio: sizes, verdicts and SNR against the original clip.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from freqrex.criterion import KINDS

if TYPE_CHECKING:
    from freqrex.evaluation.report import Summary
    from freqrex.explanation import Result
    from freqrex.manipulation import AttackResult

__all__ = ["attack_page", "evaluation_page", "result_page"]

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { border-bottom: 1px solid #ddd; padding: .3em .7em; text-align: left;
         vertical-align: middle; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
audio { width: 16em; height: 2.2em; } img { max-width: 100%; border: 1px solid #eee; }
.bad { color: #b00; } .note { color: #665; } dl { display: grid;
grid-template-columns: max-content auto; gap: .1em 1em; } dt { font-weight: 600; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _audio(src: str | None) -> str:
    if src is None:
        return "<td>-</td>"
    return (f'<td><audio controls preload="auto" src="{_e(src)}"></audio>'
            f'<br><a href="{_e(src)}">{_e(src)}</a></td>')


def _table(head: list[str], rows: list[str]) -> str:
    return ("<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>\n"
            + "\n".join(rows) + "</table>")


def _cells(*values: Any, numeric: tuple[int, ...] = ()) -> str:
    return "".join(f'<td class="n">{v}</td>' if i in numeric else f"<td>{v}</td>"
                   for i, v in enumerate(values))


def _snr(value: float | None) -> str:
    if value is None:
        return ""
    return "identical" if math.isinf(value) else f"{value:.1f} dB"


def _gain(db: float | None) -> str:
    """A coefficient gain in dB: removal as such, none for ``set`` (a level, not a gain)."""
    if db is None:
        return "–"
    return "removed" if math.isinf(db) else f"{db:+.1f}"


def _inaudible(flag: bool | None) -> str:
    return "–" if flag is None else ("yes" if flag else "no")


def _snr_db(x: Any, y: Any) -> float:
    """SNR of ``y`` against the clip ``x`` in dB, as :func:`freqrex.manipulation.snr_db`
    (importing it from here would close an import cycle through the results' ``save``).
    """
    import numpy as np

    x = np.asarray(x, dtype=np.float64)
    noise = float(np.sum((x - y) ** 2))
    return math.inf if noise == 0 else 10.0 * math.log10(float(np.sum(x**2)) / noise)


def _header(result: Result) -> list[str]:
    from freqrex.output.terminal import clip_name, model_name

    p = result.prediction
    top = ("the model's top class" if p.class_index == result.target
           else f"given; <span class=\"bad\">the model's top class is {_e(p.label)} "
           f"{p.confidence:.3f}</span>")
    threshold = result.config.confidence_filter * result.confidence
    seconds = result.audio.shape[0] / result.sample_rate
    return ["<dl>",
            f"<dt>clip</dt><dd>{_e(clip_name(result.source))} ({seconds:.2f} s at "
            f"{result.sample_rate} Hz)</dd>",
            f"<dt>model</dt><dd>{_e(model_name(result.model_info))}</dd>",
            f"<dt>target</dt><dd>{_e(result.target_label)} (class {result.target}, {top}), "
            f"confidence {result.confidence:.3f}</dd>",
            f"<dt>features</dt><dd>{result.n_features} {_e(result.config.domain)} "
            f"{result.unit}</dd>",
            f"<dt>passes</dt><dd>a set passes when the model's top class is "
            f"{_e(result.target_label)} with confidence &ge; {threshold:.3f} "
            f"({result.config.confidence_filter:g} &times; {result.confidence:.3f})</dd>",
            "</dl>"]


def result_page(result: Result, files: dict[str, str], figure: str | None) -> str:
    """The page of one explanation.

    Parameters
    ----------
    result : Result
        The explanation.
    files : dict
        WAVs next to the page: ``"original"``, each found kind, ``"without_necessary"``,
        and with ``multiple > 1`` ``"sufficient_<i>"`` for each set after the first.
    figure : str, optional
        The figure next to the page.

    Returns
    -------
    str
        The HTML document.
    """
    from freqrex.output.terminal import bin_hz, hz_decimals, hz_ranges, removal_verdict

    decimals = hz_decimals(bin_hz(result))
    rows = [f"<tr>{_audio(files.get('original'))}"
            + _cells("original clip", result.n_features, "100%", "100%",
                     f"{_e(result.prediction.label)} {result.prediction.confidence:.3f}", "",
                     "", "", numeric=(1, 2, 3)) + "</tr>"]
    for kind in KINDS:
        e = result.explanations[kind]
        if not e.found or e.prediction is None:
            rows.append("<tr><td>-</td>" + _cells(kind, "not found", "", "", "", "", "", "")
                        + "</tr>")
            continue
        snr = _snr_db(result.audio, e.audio) if e.audio is not None else None
        rows.append(f"<tr>{_audio(files.get(kind))}" + _cells(
            kind, e.size, f"{100 * e.share_bins:.3g}%", f"{100 * e.share_energy:.1f}%",
            f"{_e(e.prediction.label)} {e.prediction.confidence:.3f}",
            "yes" if e.verified else '<span class="bad">no</span>', _snr(snr),
            _e(hz_ranges(e.hz_ranges, 6, decimals)), numeric=(1, 2, 3)) + "</tr>")
    verdict = removal_verdict(result)
    if verdict is not None:
        rows.append(f"<tr>{_audio(files.get('without_necessary'))}" + _cells(
            "original minus necessary", "", "", "", _e(verdict), "", "", "") + "</tr>")
    body = [f"<h1>freqrex explanation: {_e(result.target_label)}</h1>", *_header(result),
            "<h2>Listen</h2>",
            _table(["audio", "what", result.unit, f"% {result.unit}", "% energy",
                    "model says", "verified", "SNR vs clip", "Hz ranges"], rows)]
    body += _multiple_section(result, files)
    if figure is not None:
        body += ["<h2>Figure</h2>", f'<img src="{_e(figure)}" alt="explanation figure">']
    s = result.stats
    body.append(f'<p class="note">{s.model_calls} model calls ({s.mutants} waveforms), '
                f"{s.seconds_total:.2f} s, {s.seconds_model:.2f} s in model inference. "
                "Written by freqrex; the numbers are in explanation.json.</p>")
    return _page(f"freqrex: {result.target_label}", body)


def _multiple_section(result: Result, files: dict[str, str]) -> list[str]:
    """``multiple > 1``: one row per sufficient set (set 1 is ``sufficient``; set ``i``
    plays ``files["sufficient_<i>"]``), then the redundancy; nothing otherwise."""
    from freqrex.output.terminal import bin_hz, hz_decimals, hz_ranges

    red = result.redundancy
    if red is None:
        return []
    decimals = hz_decimals(bin_hz(result))
    stft = result.config.domain == "stft"
    found_by = red.get("found_by", [])
    rows = []
    for i, e in enumerate(result.explanations_multi, 1):
        says = (f"{_e(e.prediction.label)} {e.prediction.confidence:.3f}"
                if e.prediction is not None else "-")
        ok = ("yes" if e.verified else '<span class="bad">no</span>') + (
            "" if e.minimal else " (not minimal)")
        times = [", ".join(f"{a:.2f}-{b:.2f} s" for a, b in e.time_ranges[:6])] if stft else []
        rows.append(f"<tr>{_audio(files.get('sufficient' if i == 1 else f'sufficient_{i}'))}"
                    + _cells(f"set {i}", _e(found_by[i - 1] if i <= len(found_by) else ""),
                             e.size, f"{100 * e.share_bins:.3g}%",
                             f"{100 * e.share_energy:.1f}%", says, ok,
                             _e(hz_ranges(e.hz_ranges, 6, decimals)), *times,
                             numeric=(2, 3, 4)) + "</tr>")
    n = red.get("sets", len(result.explanations_multi))
    overlap = ("pairwise disjoint" if red.get("disjoint", True) else
               f"sharing at most {100 * red.get('max_pairwise_overlap', 0.0):.0f}% of a set")
    line = (f"<p>Redundancy: <b>{n}</b> sufficient set(s) found ({overlap}) of the "
            f"{result.config.multiple} asked for; together they hold "
            f"{100 * red.get('union_share_features', 0.0):.3g}% of the {result.unit} and "
            f"{100 * red.get('union_share_energy', 0.0):.1f}% of the energy. Stopped: "
            f"{_e(red.get('reason', ''))}.</p>"
            '<p class="note">The count is a lower bound found within multiple_budget, not '
            "every reason the model has: one small set means a fragile decision, several "
            "disjoint sets a robust one. Each row is the model's verdict on that set alone."
            "</p>")
    head = ["audio", "set", "found by", result.unit, f"% {result.unit}", "% energy",
            "model says", "verified", "Hz ranges", *(["time ranges"] if stft else [])]
    return ["<h2>Multiple explanations</h2>", line, _table(head, rows)]


def attack_page(results: dict[str, AttackResult], explained: dict[str, Result],
                files: dict[str, str], figures: dict[str, str]) -> str:
    """The page of ``freqrex attack``: the original, then per domain each ``k`` with a
    player for every step that flipped the class.

    Parameters
    ----------
    results : dict
        Domain -> attack.
    explained : dict
        Domain -> the explanation each attack used (for the header).
    files : dict
        ``"original"`` and ``"<domain>_k<k>"`` -> WAV next to the page.
    figures : dict
        Domain -> figure next to the page.
    """
    from freqrex.output.terminal import attack_verdict

    first = next(iter(explained.values()), None)
    body = ["<h1>freqrex attack</h1>"] + (_header(first) if first is not None else [])
    body += ["<h2>Original</h2>", _table(["audio", "model says"], [
        f"<tr>{_audio(files.get('original'))}"
        + (_cells(f"{_e(first.prediction.label)} {first.prediction.confidence:.3f}")
           if first is not None else "<td></td>") + "</tr>"])]
    for name, r in results.items():
        rows = []
        for s in r.steps:
            wav = files.get(f"{name}_k{s.k}")
            says = (f"{_e(s.prediction.label)} {s.prediction.confidence:.3f}" if s.answered
                    else "no answer (output not finite)")
            rows.append(f"<tr>{_audio(wav)}" + _cells(
                s.k, s.touched, '<span class="bad">yes</span>' if s.flipped else "no",
                _gain(s.gain_db), says, f"{s.prediction.target_confidence:.3f}",
                _snr(s.snr_db), _snr(s.seg_snr_db), _inaudible(s.inaudible),
                numeric=(0, 1, 3, 5)) + "</tr>")
        verdict = attack_verdict(r).replace("[yellow]", "").replace("[/]", "")
        body += [f"<h2>{_e(name)} attack ({_e(r.mode)})</h2>", f"<p>{_e(verdict)}</p>",
                 _table(["audio (flipped steps)", "k", "touched", "flipped", "gain (dB)",
                         "model says", f"p({r.target_label})", "SNR", "segmental SNR",
                         "inaudible (proxy)"], rows)]
        if name in figures:
            body.append(f'<img src="{_e(figures[name])}" alt="{_e(name)} attack figure">')
    return _page("freqrex attack", body)


def evaluation_page(summary: Summary, figures: list[str], note: str = "") -> str:
    """The data-set report as a page: the table, the totals, ``note`` (where the paper's
    numbers come from) and the figures.
    """
    rows = [f"<tr><td>{_e(label)}</td>" + "".join(f"<td>{_e(c)}</td>" for c in cells)
            + f"<td>{_e(paper)}</td></tr>" for label, cells, paper in summary.rows()]
    body = ["<h1>freqrex evaluation</h1>",
            f"<dl><dt>model</dt><dd>{_e(summary.run.get('model'))}</dd>"
            f"<dt>data</dt><dd>{_e(summary.run.get('data_dir'))}</dd>"
            f"<dt>results</dt><dd>{_e(summary.db)}</dd></dl>",
            f"<p>{_e(summary.totals())}</p>",
            _table(["", *summary.domains, "paper"], rows),
            f'<p class="note">({_e(note)}.)</p>' if note else ""]
    body += _redundancy_section(summary) + _rankings_section(summary)
    if summary.errors:
        body += [f"<h2>Errors ({len(summary.errors)})</h2>", "<ul>"]
        body += [f"<li><code>{_e(c)}</code>: {_e(m)}</li>" for c, m in summary.errors[:50]]
        body.append("</ul>")
    body += [f'<p><img src="{_e(f)}" alt="{_e(f)}"></p>' for f in figures]
    return _page("freqrex evaluation", body)


def _redundancy_section(summary: Summary) -> list[str]:
    """The evaluation's redundancy table (``multiple > 1``); nothing otherwise."""
    rows, ks = getattr(summary, "redundancy", []), getattr(summary, "redundancy_ks", [])
    if not rows:
        return []
    head = ["domain", "mode", "disjoint sets", "clips", *(f"flip rate at k = {k}" for k in ks)]
    cells = ["<tr>" + _cells(_e(r.domain), _e(r.mode), _e(r.group), r.clips,
                             *(_e(r.cell(k)) for k in ks), numeric=(3,)) + "</tr>"
             for r in rows]
    return ["<h2>Redundancy and flip rate</h2>",
            "<p>Clips grouped by the number of disjoint sufficient sets found (a lower bound "
            "within multiple_budget); per group, the share of its clips whose class the "
            "attack flipped.</p>", _table(head, cells)]


def _rankings_section(summary: Summary) -> list[str]:
    """The evaluation's "rankings compared" table (``--compare``); nothing otherwise."""
    from freqrex.evaluation.baselines_report import HEADERS, NOTE, TITLE

    rows = getattr(summary, "rankings", [])
    if not rows:
        return []
    cells = ["<tr>" + _cells(_e(r.domain), _e(r.ranking), *(_e(c) for c in r.cells()))
             + "</tr>" for r in rows]
    return [f"<h2>{_e(TITLE.capitalize())}</h2>", f"<p>{_e(NOTE)}</p>", _table(HEADERS, cells)]
