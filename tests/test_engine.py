"""The warm engine gives exactly what ``explain`` gives, and pays its set-up once."""

from __future__ import annotations

import numpy as np
from oracles import BANDS, SR, band_energy_model, make_clip

import freqrex

FAST = {"iterations": 2, "search_limit": 120, "seed": 1, "minimal_budget": 60}


def test_explainer_results_equal_explain_and_the_model_is_opened_once(tmp_path):
    path = band_energy_model(tmp_path / "bands.onnx", BANDS)
    clips = [make_clip(seed=s) for s in (0, 1)]
    explainer = freqrex.Explainer(path, sample_rate=SR, **FAST)
    warm = explainer.explain_many(clips)
    for clip, got in zip(clips, warm):
        alone = freqrex.explain(path, clip, sample_rate=SR, **FAST)
        np.testing.assert_array_equal(got.responsibility, alone.responsibility)
        for kind in got.explanations:
            np.testing.assert_array_equal(got.explanations[kind].bins,
                                          alone.explanations[kind].bins)
    # one model for both clips: its call count covers both explanations
    assert explainer.model.stats.calls == sum(r.stats.model_calls for r in warm)


def test_explainer_attacks_an_explanation_in_its_own_domain(tmp_path):
    path = band_energy_model(tmp_path / "bands.onnx", BANDS)
    explainer = freqrex.Explainer(path, sample_rate=SR, **FAST)
    result = explainer.explain(make_clip(seed=2), domain="stft")
    calls = explainer.model.stats.calls
    attacked = explainer.attack(result=result, ks=(1, 2))
    assert attacked.domain == "stft" and [s.k for s in attacked.steps] == [1, 2]
    assert explainer.model.stats.calls == calls + 1   # no second explanation


def test_explainer_runs_every_attack_mode_as_the_functions_do(tmp_path):
    from freqrex.config import AttackConfig
    from freqrex.manipulation import attacks

    path = band_energy_model(tmp_path / "bands.onnx", BANDS)
    settings = AttackConfig(modes=("remove", "gain"), ks=(1, 3))
    explainer = freqrex.Explainer(path, sample_rate=SR, attack_config=settings, **FAST)
    clip = make_clip(seed=2)
    result = explainer.explain_for_attack(clip)
    warm = explainer.attacks(result=result)
    cold = attacks(path, result=freqrex.explain(path, clip, sample_rate=SR, **FAST),
                   attack_config=settings)
    assert list(warm) == ["remove", "gain"]
    for mode in warm:
        assert [s.to_dict() for s in warm[mode].steps] == [s.to_dict() for s in cold[mode].steps]


def test_an_evaluation_worker_keeps_one_explainer_for_all_its_clips(tmp_path):
    import soundfile as sf

    from freqrex.config import AttackConfig, Config
    from freqrex.evaluation import task

    model = freqrex.OnnxModel(band_energy_model(tmp_path / "bands.onnx", BANDS))
    job = task.Job(model=None, config=Config(**FAST), attack=AttackConfig(ks=(1,)),
                   sample_rate=SR)
    seen = []
    for seed in (2, 3):
        sf.write(tmp_path / f"{seed}.wav", make_clip(seed=seed), SR)
        record = task.evaluate_clip(f"{seed}.wav", str(tmp_path / f"{seed}.wav"), job, model)
        assert record.status == "ok", record.error
        seen.append(task.explainer_for(job, model))
    assert seen[0] is seen[1] and seen[0].model is model and len(task._EXPLAINERS) == 1


def test_synthesis_overlapped_with_the_model_changes_no_result(monkeypatch):
    """Long clips build the next mutant batch in a second thread while the model scores
    one: the result is bit for bit the one of the plain loop, and the overlap ran."""
    from freqrex import mutants
    from freqrex.audio import load_audio
    from freqrex.examples import long_clip, reference_model

    x, rate = load_audio(long_clip(), 16000)
    clip = np.ascontiguousarray(x[:5 * rate])
    assert clip.shape[0] >= mutants.OVERLAP_SAMPLES
    params = dict(sample_rate=rate, seed=2, iterations=2, search_limit=200, minimal_budget=120)
    jobs = []
    plain = mutants.overlapped

    def counted(items, build, consume):
        jobs.append(len(items))
        plain(items, build, consume)

    monkeypatch.setattr(mutants, "overlapped", counted)
    overlapped = freqrex.explain(reference_model(), clip, **params)
    assert max(jobs) >= 2
    monkeypatch.setattr(mutants, "OVERLAP_SAMPLES", clip.shape[0] + 1)
    jobs.clear()
    serial = freqrex.explain(reference_model(), clip, **params)
    assert not jobs
    assert overlapped.responsibility.tobytes() == serial.responsibility.tobytes()
    for kind, e in serial.explanations.items():
        o = overlapped.explanations[kind]
        assert o.bins.tolist() == e.bins.tolist(), kind
        assert o.prediction == e.prediction, kind
    assert overlapped.stats.mutants == serial.stats.mutants
