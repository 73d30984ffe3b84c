"""Attack modes (remove, attenuate, amplify, set, gain), targeted attacks, the perceptual
proxy, and their place in ``freqrex attack`` and ``freqrex evaluate``.

The oracle is the band-energy model (tests/oracles.py): the class is the band with most
energy. Two tones exactly on rfft bins make a close call whose answers are analytic: the
410 Hz tone (band 0, amplitude 1) leads the 1500 Hz tone (band 1, amplitude 0.9), so band 0
loses when its tone's gain drops below 0.9 (-0.915 dB), and band 1 wins when its tone's gain
rises above 1/0.9 (+0.915 dB).
"""

import json
import math

import numpy as np
import pytest
import soundfile as sf
from oracles import BANDS, SR, band_energy_model, band_noise, make_clip, tone_clip

import freqrex
from freqrex import FreqrexError
from freqrex.config import AttackConfig
from freqrex.manipulation import attack, attacks
from freqrex.perception import Judge, segmental_snr

N = 16_384
FAST = {"seed": 0, "iterations": 3, "search_limit": 300, "sample_rate": SR}
FLIP_DB = 20 * math.log10(1 / 0.9)  # 0.9151 dB: the close call's margin
LOW, MID = "200-600Hz", "1000-2000Hz"


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    return band_energy_model(tmp_path_factory.mktemp("modes") / "bands.onnx", BANDS)


@pytest.fixture(scope="module")
def explained(oracle):
    return freqrex.explain(oracle, tone_clip(), **FAST)


def top_class(oracle, audio):
    return int(np.argmax(freqrex.OnnxModel(oracle)(audio[None])[0]))


# -- the perceptual proxy ----------------------------------------------------------------------


def test_segmental_snr_of_a_scaled_copy_is_the_analytic_value():
    x = make_clip(seed=3, n=N)
    for a in (0.9, 0.5, 1.2):  # noise (1 - a) x in every frame: SNR -20 log10 |1 - a|
        assert segmental_snr(x, a * x, SR) == pytest.approx(-20 * math.log10(abs(1 - a)))
    # clamped per frame: a copy off by 1e-4 is 80 dB, counted as 35; -20 dB counts as -10
    assert segmental_snr(x, (1 + 1e-4) * x, SR) == pytest.approx(35.0)
    assert segmental_snr(x, -9 * x, SR) == pytest.approx(-10.0)
    # silent frames are left out: a clip silent in its second half gives the same answer
    half = x.copy()
    half[N // 2:] = 0
    assert segmental_snr(half, 0.9 * half, SR) == pytest.approx(20.0)


def test_a_perturbation_40_db_below_the_signal_in_its_bands_is_inaudible():
    x = make_clip(seed=1, n=N)
    judged = Judge(x, SR, offset_db=12.0)(1.01 * x.astype(np.float64))  # -40 dB, same bands
    assert judged.inaudible and judged.above_mask == 0.0
    assert judged.mask_ratio_db == pytest.approx(-40 + 12, abs=1e-6)
    assert Judge(x, SR)(x).mask_ratio_db == -math.inf  # no change at all


def test_a_loud_tone_where_the_signal_is_silent_is_audible():
    rng = np.random.default_rng(0)
    x = (0.2 * band_noise(rng, 200, 600, 1.0, N)).astype(np.float32)  # nothing above 600 Hz
    tone = 0.05 * np.cos(2 * np.pi * 7000 * np.arange(N) / SR)
    judged = Judge(x, SR)(x + tone)
    assert not judged.inaudible and judged.mask_ratio_db > 20
    assert 0 < judged.above_mask < 0.2  # one band of ~20, in every frame


# -- modes, untargeted -------------------------------------------------------------------------


def test_gain_search_finds_the_smallest_flipping_cut_within_its_tolerance(oracle, explained):
    tol = 0.05
    a = attack(oracle, result=explained, ks=(1,), mode="gain", gain_tolerance_db=tol)
    (step,) = a.steps
    assert step.flipped and step.mode == "gain" and step.gain < 1
    # analytic: the 410 Hz tone below 0.9 of itself; the search lands within tol above it
    assert FLIP_DB < -step.gain_db <= FLIP_DB + tol
    # an independent scan with the model on a fine grid of cuts agrees
    x, top = explained.audio, 0.3 * np.cos(2 * np.pi * 410 * np.arange(N) / N)
    scan = np.arange(0.80, 1.0, 0.001)
    waves = np.stack([x - (1 - 10 ** (-d / 20)) * top for d in scan]).astype(np.float32)
    first = scan[np.argmax(np.argmax(freqrex.OnnxModel(oracle)(waves), axis=1) != 0)]
    assert abs(-step.gain_db - first) <= tol + 0.001
    assert top_class(oracle, step.audio) == step.prediction.class_index == 1
    assert step.snr_db == pytest.approx(-20 * math.log10(1 - step.gain) + 10 * math.log10(1.81),
                                        abs=1e-3)
    assert step.inaudible and step.evaluations > 2 * 12  # grid and refinement


def test_each_fixed_mode_does_what_it_says(oracle, explained):
    peak = 0.3 * N / 2  # the 410 Hz tone's rfft magnitude, the clip's largest
    assert np.abs(explained.domain.magnitude()).max() == pytest.approx(peak, rel=1e-4)
    cases = [("remove", {}, True, 0.0), ("attenuate", {"factor": 0.5}, True, 0.5),
             ("attenuate", {"factor": 0.95}, False, 0.95), ("amplify", {"factor": 2.0}, False, 2),
             ("set", {"level": 0.8}, True, 0.8), ("set", {"level": 0.95}, False, 0.95)]
    for mode, kw, flips, gain in cases:
        (step,) = attack(oracle, result=explained, ks=(1,), mode=mode, **kw).steps
        assert step.flipped is flips and step.mode == mode, (mode, kw)
        assert (top_class(oracle, step.audio) != 0) is flips
        # the 410 Hz tone is now at ``gain`` of itself (set: level x the largest magnitude)
        expected = tone_clip(amplitudes=(gain, 0.9))
        np.testing.assert_allclose(step.audio, expected, atol=2e-5)
        assert step.gain == (None if mode == "set" else pytest.approx(gain))


def test_modes_run_together_on_one_explanation_and_batch_size_changes_nothing(oracle):
    x = tone_clip()
    one = attacks(oracle, x, modes=("remove", "gain"), ks=(1, 2), batch_size=3, **FAST)
    two = attacks(oracle, x, modes=("remove", "gain"), ks=(1, 2), batch_size=64, **FAST)
    assert list(one) == ["remove", "gain"]
    for mode in one:
        for s, t in zip(one[mode].steps, two[mode].steps):
            np.testing.assert_array_equal(s.audio, t.audio)
            assert s.to_dict() == t.to_dict()
    with pytest.raises(FreqrexError, match="one mode"):
        attack(oracle, x, modes=("remove", "gain"), **FAST)


def test_bad_mode_settings_say_what_is_wrong():
    for kw, words in [({"mode": "amplify"}, "factor must be above 1 to amplify"),
                      ({"mode": "boost"}, "mode must be one or more of"),
                      ({"mode": "set", "level": 0}, "level must be a number above 0"),
                      ({"gain_tolerance_db": -1}, "gain_tolerance_db"),
                      ({"gain_points": 0}, "gain_points")]:
        with pytest.raises(FreqrexError, match=words):
            AttackConfig(**kw)
    assert AttackConfig().modes == ("remove",)  # the default still removes


# -- targeted ----------------------------------------------------------------------------------


def test_targeted_gain_puts_the_named_class_on_top_with_the_smallest_boost(oracle, recwarn):
    tol = 0.05
    res = attacks(oracle, tone_clip(), to=MID, modes=("gain", "amplify", "remove"),
                  factor=1.05, ks=(1,), gain_tolerance_db=tol, **FAST)
    assert not [w for w in recwarn if "top class" in str(w.message)]  # no degenerate warning
    gain, amplify, remove = (res[m].steps[0] for m in ("gain", "amplify", "remove"))
    assert res["gain"].targeted and res["gain"].target_label == MID
    assert FLIP_DB <= gain.gain_db <= FLIP_DB + tol and gain.flipped
    # flipped says exactly whether the named class is on top of the returned audio
    for step in (gain, amplify, remove):
        assert step.flipped is (top_class(oracle, step.audio) == 1)
    assert not amplify.flipped  # 1.05 < 1/0.9
    assert not remove.flipped  # removing the named class's own tone does not help it
    doc = res["gain"].to_dict()
    assert doc["targeted"] is True and doc["flipped_means"] == f"{MID} is the top class"


def test_a_gain_search_without_a_flip_reports_the_closest_try(oracle):
    # the 3000-5000 Hz band is empty: no gain of its (rounding-error) bins puts it on top
    (step,) = attack(oracle, tone_clip(), to="3000-5000Hz", mode="gain", ks=(1,), **FAST).steps
    assert not step.flipped and step.gain != 1.0
    assert top_class(oracle, step.audio) == step.prediction.class_index != 2


def test_an_unknown_target_class_is_an_input_error(oracle):
    with pytest.raises(FreqrexError, match="unknown class"):
        attack(oracle, tone_clip(), to="nope", **FAST)


# -- touched sets, output ----------------------------------------------------------------------


def test_steps_name_the_sufficient_sets_they_touch(oracle):
    x = make_clip(seed=2, n=N, amplitudes=(1.0, 0.3, 0.2))
    result = freqrex.explain(oracle, x, multiple=2, **FAST)
    sets = result.explanations_multi
    (step,) = attack(oracle, result=result, ks=(50,)).steps
    expected = [i for i, e in enumerate(sets) if np.intersect1d(e.bins, step.features).size]
    assert step.touches_sets == expected and step.to_dict()["touches_sets"] == expected
    assert step.features.size == 50


def test_attack_command_runs_several_modes_targeted_and_writes_each(oracle, tmp_path):
    from typer.testing import CliRunner

    from freqrex.cli import app

    clip = tmp_path / "close.wav"
    sf.write(clip, tone_clip(), SR, subtype="FLOAT")
    out = tmp_path / "att"
    args = ["attack", str(clip), "--onnx", str(oracle), "--ks", "1", "--domain", "fft",
            "--iterations", "3", "--search-limit", "300", "--quiet"]
    got = CliRunner().invoke(app, [*args, "--mode", "remove,gain", "--out", str(out)])
    assert got.exit_code == 0, got.output
    assert "fft attack (remove) on" in got.output and "fft attack (gain) on" in got.output
    assert max(len(line) for line in got.output.splitlines()) <= 80
    doc = json.loads((out / "fft-gain" / "attack.json").read_text())
    assert doc["mode"] == "gain" and doc["steps"][0]["gain_db"] < 0
    assert {"seg_snr_db", "mask_ratio_db", "inaudible", "touches_sets"} <= set(doc["steps"][0])
    page = (out / "report.html").read_text()   # the page shows what the JSON says
    assert "gain (dB)" in page and "segmental SNR" in page and "inaudible (proxy)" in page
    assert f"<td>{doc['steps'][0]['gain_db']:+.1f}</td>" in page.replace(' class="n"', "")
    assert "<td>removed</td>" in page.replace(' class="n"', "")
    got = CliRunner().invoke(app, [*args, "--to", MID, "--mode", "gain"])
    assert got.exit_code == 0 and f"puts {MID} on top at k = 1" in got.output
    assert "warning" not in got.output
    got = CliRunner().invoke(app, [*args, "--to", "nope"])
    assert got.exit_code == 2 and "unknown class" in got.output
    got = CliRunner().invoke(app, [*args, "--mode", "amplify"])
    assert got.exit_code == 2 and "--factor must be above 1 to amplify" in got.output


# -- evaluate ----------------------------------------------------------------------------------


def test_evaluate_runs_every_mode_and_reports_each(oracle, tmp_path):
    from freqrex.evaluation import Store, evaluate
    from freqrex.evaluation.report import rich_table, summarize, to_markdown

    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "close.wav", tone_clip(), SR, subtype="FLOAT")
    sf.write(data / "wide.wav", tone_clip(amplitudes=(1.0, 0.5)), SR, subtype="FLOAT")
    db = tmp_path / "r.sqlite"
    run = evaluate(oracle, data, db, workers=0, ks=(1, 5), modes=("remove", "gain"),
                   domains=("fft",), seed=0, iterations=3, search_limit=300)
    with Store(db) as store:
        rows = store.attacks()
    assert {(a["clip"], a["mode"], a["k"]) for a in rows} == {
        (c, m, k) for c in ("close.wav", "wide.wav") for m in ("remove", "gain") for k in (1, 5)}
    gain = {a["clip"]: a for a in rows if a["mode"] == "gain" and a["k"] == 1}
    assert FLIP_DB < -gain["close.wav"]["gain_db"] <= FLIP_DB + 0.1
    assert gain["close.wav"]["inaudible"] == 1 and gain["close.wav"]["seg_snr_db"] > 20
    s = summarize(db)
    assert s.modes == ["remove", "gain"]
    assert s.value("fft", "gain_flip_rate_k1") == 1.0
    assert s.value("fft", "flip_rate_k1") == s.value("fft", "remove_flip_rate_k1")
    labels = [label for label, _, _ in s.rows()]
    assert "flip rate at k = 1 (gain)" in labels and "flip rate at k = 5 (remove)" in labels
    assert "successful attacks judged inaudible (proxy) (gain)" in labels
    assert "attack remove, gain" in to_markdown(s) and rich_table(s).row_count == len(labels)
    assert run.processed == 2


def test_a_database_of_an_older_schema_is_refused_clearly(tmp_path):
    import sqlite3

    from freqrex.evaluation import Store

    db = tmp_path / "old.sqlite"
    Store(db, settings={"seed": 0}).close()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    with pytest.raises(FreqrexError, match=r"older freqrex \(results schema 2; this one reads"):
        Store(db)


def test_a_change_on_which_the_model_gives_no_finite_answer_is_no_flip(explained, oracle):
    # Like musicnn's float16 step, this model overflows when the clip gets loud: a boost
    # must then be reported as unanswered, not crash the attack or count as a flip.
    inner = freqrex.OnnxModel(oracle)
    peak = float(np.abs(explained.audio).max())

    def fragile(batch):
        out = inner.scores(batch)
        out[np.abs(batch).max(axis=1) > 1.5 * peak] = np.inf
        return out

    model = freqrex.CallableModel(fragile, sample_rate=SR, labels=inner.labels)
    a = attack(model, result=explained, mode="amplify", factor=100.0, ks=(1, 2))
    assert [s.answered for s in a.steps] == [False, False]
    assert not any(s.flipped for s in a.steps)
    assert json.loads(json.dumps(a.to_dict(), allow_nan=False))["steps"][0]["answered"] is False
    g = attack(model, result=explained, mode="gain", ks=(1,))   # the search steps around them
    assert g.steps[0].answered and g.steps[0].flipped
    assert top_class(oracle, g.steps[0].audio) != explained.target
