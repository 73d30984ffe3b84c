"""report.html in a real browser: every audio player loads its file; a screenshot is taken.

Runs headless Chromium (Debian's ``chromium`` package; ``.ci/run`` installs it) on the pages
``run --out`` and ``attack --out`` write. Without Chromium the browser tests skip, saying so.
"""

import re

import pytest
from browser import audio_states, needs_chromium, screenshot
from oracles import BANDS, SR, band_energy_model, make_clip

import freqrex
from freqrex.output.files import save_attacks

FAST = {"iterations": 3, "search_limit": 300, "seed": 1}

@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    d = tmp_path_factory.mktemp("html")
    model = freqrex.OnnxModel(band_energy_model(d / "bands.onnx", BANDS), providers="cpu")
    result = freqrex.explain(model, make_clip(), sample_rate=SR, **FAST)
    return model, result


def _audio_sources(page):
    return re.findall(r'<audio[^>]*src="([^"]+)"', page.read_text())


def test_run_page_has_a_player_per_reconstruction_and_no_network(explained, tmp_path):
    _, result = explained
    out = result.save(tmp_path / "run")
    page = out / "report.html"
    text = page.read_text()
    sources = _audio_sources(page)
    expected = ["original.wav"] + [f"{k}.wav" for k, e in result.explanations.items()
                                   if e.found] + ["without_necessary.wav"]
    assert sources == expected
    assert all((out / s).is_file() for s in sources)
    assert "http://" not in text and "https://" not in text and "<script" not in text
    for kind, e in result.explanations.items():  # sizes and verdicts beside each player
        assert f"<td>{kind}</td>" in text and f'<td class="n">{e.size}</td>' in text
    assert 'src="explanation.png"' in text and "SNR" in text


@needs_chromium
def test_every_audio_player_loads_in_chromium(explained, tmp_path):
    _, result = explained
    out = result.save(tmp_path / "run")
    states = audio_states(out / "report.html")
    assert [s["src"] for s in states] == _audio_sources(out / "report.html")
    for s in states:
        assert s["error"] is None and s["ready"] >= 1, s
        assert s["duration"] == pytest.approx(result.audio.shape[0] / SR, abs=0.01), s
    png = screenshot(out / "report.html", tmp_path / "report.png")
    assert png.is_file() and png.stat().st_size > 10_000


@needs_chromium
def test_attack_page_plays_each_flipping_clip(explained, tmp_path):
    model, result = explained
    # the 200-600 Hz band holds the clip's decision: removing enough of it flips the class
    attack = freqrex.attack(model, result=result, ks=(1, 50, 4000))
    assert attack.first_flip is not None
    out = save_attacks({"fft": attack}, tmp_path / "att", explained={"fft": result})
    states = audio_states(out / "report.html")
    flipped = [f"fft/fft_k{s.k}.wav" for s in attack.steps if s.flipped]
    assert [s["src"] for s in states] == ["original.wav", *flipped]
    assert all(s["error"] is None and s["ready"] >= 1 for s in states), states
    assert screenshot(out / "report.html", tmp_path / "attack.png").is_file()


def test_evaluation_page_lists_the_table_and_figures(tmp_path):
    from freqrex.output.files import write_evaluation_page

    class Table:  # what the page reads of a Summary
        db, run, domains = "r.sqlite", {"model": "m.onnx", "data_dir": "clips"}, ["fft"]
        errors = [("bad.wav", "not audio")]

        def rows(self):
            return [("flip rate at k = 1", ["50% (1/2)"], "58% (fft)")]

        def totals(self):
            return "2 clips: 1 explained, 1 with errors."

    (tmp_path / "flip_rate.png").write_bytes(b"png")
    page = write_evaluation_page(Table(), tmp_path / "report.md")
    text = page.read_text()
    assert page.name == "report.html" and "<td>flip rate at k = 1</td><td>50% (1/2)</td>" in text
    assert 'src="flip_rate.png"' in text and "sizes.png" not in text and "bad.wav" in text
