"""What freqrex shows: Hz ranges, printed results, figures, progress, explain_many."""

import numpy as np
import pytest
from oracles import BANDS, SR, callable_band_oracle, make_clip

import freqrex
from freqrex.output.terminal import ClipProgress, hz_decimals, hz_ranges

FAST = {"iterations": 3, "search_limit": 300, "seed": 1}


def test_hz_ranges_keep_neighbouring_bins_apart_and_count_the_rest():
    ranges = [(303.75, 303.75), (304.25, 305.5), (400.0, 410.0), (500.0, 500.0), (600, 700)]
    d = hz_decimals(16_000 / 64_000)  # 0.25 Hz bins
    assert d == 1
    assert hz_ranges(ranges, most=4, decimals=d) == (
        "303.8, 304.2-305.5, 400.0-410.0, 500.0 (+1 more)")
    assert hz_decimals(31.25) == 0 and hz_decimals(0.01) == 2
    # no two printed ranges overlap once rounded, whatever the bin width
    for width in (0.25, 0.5, 1.0, 2.5, 31.25):
        d = hz_decimals(width)
        rounded = [round(k * width, d) for k in range(2000)]
        assert len(set(rounded)) == len(rounded), width


@pytest.fixture(scope="module")
def result():
    model = freqrex.CallableModel(callable_band_oracle(BANDS, SR), sample_rate=SR,
                                  labels=["low", "mid", "high"])
    return freqrex.explain(model, make_clip(), sample_rate=SR, **FAST)


def test_print_result_is_a_readable_table(result):
    text = str(result)
    assert "target  low (class 0, the model's top class)" in text
    assert "sufficient" in text and "necessary" in text and "Hz ranges" in text
    assert "Result(" not in text and max(len(line) for line in text.splitlines()) <= 80


def test_plots_return_figures_without_touching_the_backend(result):
    import matplotlib
    from matplotlib.figure import Figure

    backend = matplotlib.get_backend()
    fig = result.plot()
    assert isinstance(fig, Figure) and len(fig.axes) >= 7
    spare = Figure()
    ax = spare.add_subplot()
    assert result.plot(ax=ax) is spare and ax.get_xscale() == "log"
    attack = freqrex.attack(result_model(), result=result, ks=(1, 10))
    assert isinstance(attack.plot(result), Figure) and isinstance(attack.plot(), Figure)
    assert "attack (remove) on low" in str(attack)
    assert matplotlib.get_backend() == backend


def result_model():
    return freqrex.CallableModel(callable_band_oracle(BANDS, SR), sample_rate=SR,
                                 labels=["low", "mid", "high"])


def test_identical_sets_share_one_legend_entry(result):
    from freqrex.output.figures import groups

    merged = groups(result)
    kinds = [k for names, _ in merged for k in names]
    assert sorted(kinds) == sorted(k for k, e in result.explanations.items() if e.found)
    for names, e in merged:  # each group really is one set, and different from the others
        assert all(np.array_equal(result.explanations[k].bins, e.bins) for k in names)
    legend = [t.get_text() for t in result.plot().axes[2].get_legend().get_texts()]
    for names, _ in merged:
        assert sum(" = ".join(names) in t for t in legend) == 1


def test_clip_progress_rate_and_eta_move_with_time(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("freqrex.output.terminal.time.perf_counter", lambda: now[0])
    p = ClipProgress(quiet=True)
    with p:
        p.update("clips", 0, 10)
        assert p.rate_text() == "first clips running..."
        now[0] += 30
        p.update("clips", 1, 10)
        p.clip(type("R", (), {"status": "ok", "clip": "a.wav", "seconds": 30.0})())
        assert p.rate_text() == "2.0 clips/min, ETA 4:30"
        now[0] += 30  # no clip finished: the rate falls and the ETA grows, live
        assert p.rate_text() == "1.0 clips/min, ETA 9:00"


def test_explain_many_equals_one_at_a_time_and_activation_does_not_leak():
    # Raw band energies: a quiet clip's are all below 1 (taken as probabilities), a loud
    # clip's are not (softmaxed). A reused model must decide again for each clip.
    def energies(x):
        return np.exp(callable_band_oracle(BANDS, SR)(x)).astype(np.float64)

    quiet, loud = 1e-4 * make_clip(seed=2), 50 * make_clip(seed=3)
    assert energies(quiet[None]).max() < 1 < energies(loud[None]).max()
    shared = freqrex.CallableModel(energies, sample_rate=SR)
    many = freqrex.explain_many(shared, [quiet, loud], sample_rate=SR, **FAST)
    alone = [freqrex.explain(freqrex.CallableModel(energies, sample_rate=SR), x,
                             sample_rate=SR, **FAST) for x in (quiet, loud)]
    assert [r.model_info["activation"] for r in many] == ["none", "softmax"]
    for a, b in zip(many, alone):
        assert a.model_info["activation"] == b.model_info["activation"]
        assert a.confidence == b.confidence
        np.testing.assert_array_equal(a.responsibility, b.responsibility)
        for kind in a.explanations:
            np.testing.assert_array_equal(a.explanations[kind].bins, b.explanations[kind].bins)


def test_the_report_snr_is_the_attack_snr():
    from freqrex.manipulation import snr_db
    from freqrex.output.html import _snr_db

    x = make_clip()
    y = x + 0.1 * make_clip(seed=5)
    assert _snr_db(x, y) == pytest.approx(snr_db(x, y), rel=1e-12)
    assert _snr_db(x, x) == float("inf")


def test_print_summary_is_the_table():
    from freqrex.evaluation.report import Summary

    class Rows(Summary):
        def rows(self):
            return [("flip rate at k = 1", ["0% (0/2)"], "58% (fft)")]

        def totals(self):
            return "2 clips: 2 explained, 0 with errors."

    text = str(Rows(db="r", run={}, clips=2, ok=2, errors=[], domains=["fft"], ks=[1]))
    assert "flip rate at k = 1" in text and "2 clips: 2 explained" in text
    assert "Summary(" not in text
