"""Several sufficient sets (``multiple > 1``) where a researcher looks: the figure and
report.html (the evaluation's redundancy table is in test_evaluate_redundancy.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from browser import audio_states, needs_chromium
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from oracles import SR, TWO_BAND_N, two_band_clip, two_band_model

import freqrex
from freqrex.output.figure_sets import SET_COLOURS, plot_sets, set_colour
from freqrex.output.figures import plot_result


def _explain(domain: str = "fft", **params):
    x = two_band_clip()
    settings = dict(multiple=4, iterations=3, search_limit=400, multiple_budget=1500,
                    output_activation="softmax", seed=1, minimal_budget=4000, domain=domain,
                    n_fft=256, hop=128)
    if domain == "stft":
        settings.update(multiple_budget=6000, minimal_budget=6000)
    settings.update(params)
    return freqrex.explain(two_band_model("either", x), x, sample_rate=SR, **settings)


@pytest.fixture(scope="module", params=["fft", "stft"])
def two_sets(request):
    result = _explain(request.param)
    assert result.redundancy is not None and result.redundancy["sets"] == 2
    return result


def _sets_axes(fig: Figure):
    """The axes whose legend names sets ``set 1 ...``."""
    found = [ax for ax in fig.axes if ax.get_legend() is not None
             and ax.get_legend().get_texts()[0].get_text().startswith("set 1 ")]
    assert len(found) == 1
    return found[0]


def test_the_figure_draws_each_set_in_its_own_colour(two_sets):
    result = two_sets
    fig = plot_result(result, fig=Figure())
    ax = _sets_axes(fig)
    legend = ax.get_legend()
    unit = result.unit
    assert [t.get_text() for t in legend.get_texts()] == [
        f"set {i} ({e.size} {unit}, {100 * e.share_energy:.1f}% energy)"
        for i, e in enumerate(result.explanations_multi, 1)]
    assert [to_hex(h.get_color()) for h in legend.legend_handles] == list(SET_COLOURS[:2])
    # one drawn artist per set, in the set's colour, at the set's features
    drawn = {a.get_gid(): a for a in ax.get_children() if (a.get_gid() or "").startswith("set")}
    assert sorted(drawn) == ["set 1", "set 2"]
    for i, e in enumerate(result.explanations_multi):
        artist = drawn[f"set {i + 1}"]
        if result.config.domain == "stft":
            assert to_hex(artist.get_cmap()(1.0)) == set_colour(i)
            cells = ~np.ma.getmaskarray(artist.get_array()).ravel()
            assert np.flatnonzero(cells).tolist() == sorted(e.bins.tolist())
        else:
            colours = artist.get_facecolor() if e.size > 200 else artist.get_color()
            assert {to_hex(c) for c in np.atleast_2d(colours)} == {set_colour(i)}
    title = ax.get_title()
    assert "2 disjoint sufficient set(s) found of 4 asked for (a lower bound)" in title
    assert f"{100 * result.redundancy['union_share_energy']:.1f}% of energy" in title
    assert result.redundancy["reason"] in title


def test_one_set_keeps_the_plain_figure():
    single = _explain(multiple=1)
    fig = plot_result(single, fig=Figure())
    assert len(fig.axes) == 7   # waveform, responsibility, spectrum, 4 reconstructions
    assert not any(t.get_text().startswith("set ") for ax in fig.axes
                   if ax.get_legend() is not None for t in ax.get_legend().get_texts())
    assert len(plot_result(_explain(), fig=Figure()).axes) == 8


def test_more_sets_than_colours_cycle_and_plot_sets_draws_alone():
    result = _explain(max_overlap=0.5)   # overlapping sets: more than two are found
    n = len(result.explanations_multi)
    assert n > 2
    fig = plot_sets(result)
    handles = fig.axes[0].get_legend().legend_handles
    assert [to_hex(h.get_color()) for h in handles] == [set_colour(i) for i in range(n)]
    assert len(set(SET_COLOURS)) == len(SET_COLOURS)
    assert "overlap <= 50%" in fig.axes[0].get_title()


def _section(text: str) -> str:
    found = re.search(r"<h2>Multiple explanations</h2>(.*?)(<h2>|</body>)", text, re.S)
    assert found, "no Multiple explanations section"
    return found.group(1)


def test_report_html_has_a_row_per_set_with_its_player(two_sets, tmp_path):
    result = two_sets
    out = result.save(tmp_path / "run")
    section = _section((out / "report.html").read_text())
    rows = re.findall(r"<tr><td><audio.*?</tr>", section, re.S)
    assert len(rows) == len(result.explanations_multi) == 2
    for i, (row, e) in enumerate(zip(rows, result.explanations_multi), 1):
        wav = "sufficient.wav" if i == 1 else f"sufficient_{i}.wav"
        assert f'src="{wav}"' in row and (out / wav).is_file()
        assert f"<td>set {i}</td>" in row and f'<td class="n">{e.size}</td>' in row
        assert f"{100 * e.share_energy:.1f}%" in row and f"{100 * e.share_bins:.3g}%" in row
        assert f"{e.prediction.label} {e.prediction.confidence:.3f}" in row
        lo, hi = e.hz_ranges[0]
        assert f"{lo:.0f}" in row
        assert ("time ranges" in section) == (result.config.domain == "stft")
    red = result.redundancy
    assert "Redundancy: <b>2</b> sufficient set(s) found (pairwise disjoint) of the 4" in section
    assert f"{100 * red['union_share_energy']:.1f}% of the energy" in section
    assert "lower bound" in section


def test_report_html_has_no_section_for_one_set(tmp_path):
    out = _explain(multiple=1).save(tmp_path / "one", figure=False)
    assert "Multiple explanations" not in (out / "report.html").read_text()
    assert not list(out.glob("sufficient_*.wav"))


@needs_chromium
def test_every_set_player_loads_in_chromium(tmp_path):
    result = _explain()
    out = result.save(tmp_path / "run", figure=False)
    states = audio_states(out / "report.html")
    assert {"sufficient.wav", "sufficient_2.wav"} <= {s["src"] for s in states}
    for s in states:
        assert s["error"] is None and s["ready"] >= 1, s
        assert s["duration"] == pytest.approx(TWO_BAND_N / SR, abs=0.01), s
