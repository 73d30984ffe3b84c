"""The command line: outputs of `run` and `info`, and one-line errors on bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from oracles import BANDS, SR, bad_model, band_energy_model, make_clip, tone_clip
from typer.testing import CliRunner

from freqrex.cli import app

FAST = ["--iterations", "3", "--search-limit", "300", "--seed", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    model = band_energy_model(d / "bands.onnx", BANDS)
    clip = d / "clip.wav"
    sf.write(clip, make_clip(), SR, subtype="FLOAT")
    return d, model, clip


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_run_prints_the_explanations_and_writes_every_file(files, tmp_path):
    _, model, clip = files
    out = tmp_path / "res"
    code, stdout, _ = invoke("run", "--onnx", model, clip, "--out", out, "--quiet", *FAST)
    assert code == 0
    assert "200-600Hz" in stdout and "sufficient" in stdout and "model calls" in stdout
    assert {p.name for p in out.iterdir()} == {
        "explanation.json", "responsibility.npy", "explanation.png", "sufficient.wav",
        "necessary.wav", "complete.wav", "original.wav", "without_necessary.wav",
        "report.html"}
    doc = json.loads((out / "explanation.json").read_text())
    assert doc["source"] == str(clip) and doc["config"]["iterations"] == 3


def test_json_goes_alone_to_stdout(files):
    _, model, clip = files
    code, stdout, stderr = invoke("run", "--onnx", model, clip, "--json", *FAST)
    assert code == 0
    doc = json.loads(stdout)
    assert doc["target"]["label"] == "200-600Hz"
    assert doc["explanations"]["sufficient"]["verified"] is True
    assert "model calls" in stderr


def test_info_describes_the_model(files):
    _, model, _ = files
    code, stdout, _ = invoke("info", "--onnx", model, "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["sample_rate"] == SR and doc["labels"][0] == "200-600Hz"
    assert doc["provider"] == "CPUExecutionProvider"
    code, stdout, _ = invoke("info", "--onnx", model)
    assert code == 0 and "CPUExecutionProvider" in stdout


def _bad_clips(d):
    (d / "empty.wav").write_bytes(b"")
    (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00junkjunkjunk" * 10)
    sf.write(d / "silent.wav", np.zeros(SR, dtype=np.float32), SR, subtype="FLOAT")
    nan = make_clip()
    nan[100] = np.nan
    sf.write(d / "nan.wav", nan, SR, subtype="FLOAT")
    return {"missing": d / "nope.wav", "empty": d / "empty.wav", "corrupt": d / "corrupt.wav",
            "silent": d / "silent.wav", "nan": d / "nan.wav"}


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "silent", "nan"])
def test_bad_clip_is_one_line_error(files, tmp_path, case):
    d, model, _ = files
    clip = _bad_clips(d)[case]
    out = tmp_path / "res"
    code, stdout, stderr = invoke("run", "--onnx", model, clip, "--out", out, *FAST)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(clip.name) in lines[0]
    assert "Traceback" not in stderr + stdout
    assert not out.exists()


@pytest.mark.parametrize("kind", ["rank4_input", "two_inputs", "output_rank3", "int_input",
                                  "runtime_bad_output", "nan_output", "not_onnx", "missing"])
def test_bad_model_is_one_line_error(files, tmp_path, kind):
    _, _, clip = files
    model = tmp_path / f"{kind}.onnx"
    if kind == "not_onnx":
        model.write_text("this is not a model")
    elif kind != "missing":
        bad_model(model, kind)
    out = tmp_path / "res"
    code, stdout, stderr = invoke("run", "--onnx", model, clip, "--out", out,
                                  "--sample-rate", SR, *FAST)
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert "Traceback" not in stderr + stdout
    assert not out.exists()


@pytest.mark.parametrize("args, words", [
    (["--target", "trombone"], "trombone"),
    (["--target", "7"], "7"),
    (["--freq-range", "abc"], "freq-range"),
    (["--freq-range", "9000:9500"], "freq_range"),
    (["--iterations", "0"], "iterations"),
    (["--activation", "relu"], "activation"),
])
def test_bad_option_is_one_line_error(files, tmp_path, args, words):
    _, model, clip = files
    out = tmp_path / "res"
    code, stdout, stderr = invoke("run", "--onnx", model, clip, "--out", out, *FAST, *args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], stderr
    assert not out.exists()


def test_out_that_is_a_file_is_refused(files, tmp_path):
    _, model, clip = files
    target = tmp_path / "taken"
    target.write_text("mine")
    code, _, stderr = invoke("run", "--onnx", model, clip, "--out", target, *FAST)
    assert code == 2 and "not a folder" in stderr
    assert target.read_text() == "mine"


def test_the_installed_command_reports_errors_without_traceback(files, tmp_path):
    _, model, _ = files
    proc = subprocess.run([sys.executable, "-m", "freqrex.cli", "run", "--onnx", str(model),
                           str(tmp_path / "missing.wav")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr


def test_run_with_no_arguments_explains_the_bundled_example(tmp_path):
    code, stdout, _ = invoke("run", "--out", tmp_path / "res", "--iterations", "2",
                             "--search-limit", "200", "--quiet")
    assert code == 0, stdout
    doc = json.loads((tmp_path / "res" / "explanation.json").read_text())
    assert doc["source"].endswith(".wav") and doc["model"]["labels"][0] == "piano"
    assert doc["explanations"]["sufficient"]["verified"] is True
    assert doc["target"]["label"] in stdout


def test_attack_command_reports_each_k_and_writes_flipping_clips(files, tmp_path):
    d, model, _ = files
    clip = d / "close.wav"
    sf.write(clip, tone_clip(), SR, subtype="FLOAT")
    out = tmp_path / "att"
    code, stdout, stderr = invoke("attack", "--onnx", model, clip, "--ks", "1,3",
                                  "--domain", "fft", "--out", out, "--json", "--quiet",
                                  "--iterations", "3", "--search-limit", "300")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["fft"]["first_flip_k"] == 1
    assert [s["k"] for s in doc["fft"]["steps"]] == [1, 3]
    assert (out / "fft" / "fft_k1.wav").exists() and (out / "fft" / "attack.json").exists()
    code, _, stderr = invoke("attack", "--onnx", model, clip, "--ks", "one")
    assert code == 2 and stderr.startswith("error:") and "--ks" in stderr


# -- what the output says (issue 9) ------------------------------------------------------------


def test_version():
    from freqrex import __version__

    code, stdout, _ = invoke("--version")
    assert code == 0 and stdout.strip() == f"freqrex {__version__}"


def test_run_names_clip_model_target_and_the_pass_rule(files, tmp_path):
    _, model, clip = files
    code, stdout, _ = invoke("run", "--onnx", model, clip, "--quiet", *FAST)
    assert code == 0
    assert f"clip    {clip}" in stdout and f"model   {model}" in stdout
    assert "target  200-600Hz (class 0, the model's top class)" in stdout
    # the rule, with its threshold: 0.5 x the clip's confidence
    doc = json.loads(invoke("run", "--onnx", model, clip, "--json", "--quiet", *FAST)[1])
    assert f">= {0.5 * doc['target']['confidence']:.3f}" in stdout
    # the necessary row says why removal counts
    removed = doc["explanations"]["necessary"]["removed_prediction"]
    assert f"without: {removed['label']} {removed['confidence']:.3f}" in stdout
    assert ("class changed" in stdout) == (removed["class_index"] != 0)
    assert "Hz ranges" in stdout
    assert max(len(line) for line in stdout.splitlines()) <= 80


def test_run_says_when_the_target_is_not_the_top_class(files):
    _, model, clip = files
    code, stdout, stderr = invoke("run", "--onnx", model, clip, "--quiet", "--target",
                                  "3000-5000Hz", *FAST)
    assert code == 0
    assert "given; the model's top class is 200-600Hz" in stdout
    said = stdout + stderr  # a note in the table, or the run's warning
    assert "is not the model's top class" in said


def test_run_names_the_bundled_example_and_model(tmp_path):
    from freqrex import examples
    from freqrex.output.terminal import clip_name, model_name

    assert clip_name(str(examples.example_clip())) == (
        f"bundled example: {examples.example_clip().stem}")
    assert model_name({"source": str(examples.reference_model())}) == "bundled reference model"
    assert model_name({"source": None, "provider": "python"}) == "a Python model (python)"


def test_every_option_has_help_and_says_its_default():
    import typer.main

    command = typer.main.get_command(app)
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        if name not in ("run", "attack", "info", "evaluate"):
            continue  # other commands are checked by their own tests
        for p in sub.params:
            if not p.param_type_name == "option" or p.name in ("help",):
                continue
            assert p.help, f"{name} {p.opts[0]} has no help"
            if p.default is not None and not p.is_flag:
                assert p.show_default, f"{name} {p.opts[0]} hides its default"
            else:  # no default value: the help says what happens without it
                assert p.is_flag or "default" in p.help or p.required, (name, p.opts[0])


def test_attack_prints_verdicts_and_writes_json_figure_and_report(files, tmp_path):
    d, model, _ = files
    clip = d / "close2.wav"
    sf.write(clip, tone_clip(), SR, subtype="FLOAT")
    out = tmp_path / "att"
    code, stdout, stderr = invoke("attack", "--onnx", model, clip, "--ks", "1,3",
                                  "--domain", "fft", "--out", out, "--quiet",
                                  "--iterations", "3", "--search-limit", "300")
    assert code == 0, stderr
    assert "fft: flips at k = 1 to" in stdout and "SNR" in stdout
    assert "model calls" in stdout and f"written to {out}/" in stdout
    assert max(len(line) for line in stdout.splitlines()) <= 80
    doc = json.loads((out / "fft" / "attack.json").read_text())
    assert doc["source"] == str(clip) and doc["clip"]["n_samples"] == 16_384
    assert doc["prediction"]["label"] == "200-600Hz"
    assert doc["config"]["iterations"] == 3 and doc["attack_config"]["ks"] == [1, 3]
    assert doc["target"]["is_top_class"] is True
    for name in ("fft/attack.png", "report.html", "original.wav", "fft/fft_k1.wav"):
        assert (out / name).is_file(), name
    page = (out / "report.html").read_text()
    assert 'src="original.wav"' in page and 'src="fft/fft_k1.wav"' in page


def test_a_flip_that_does_not_persist_is_pointed_out():
    from freqrex.explanation import Prediction
    from freqrex.manipulation import AttackResult, AttackStep
    from freqrex.output.terminal import attack_verdict

    def step(k, flipped):
        p = Prediction(1 if flipped else 0, "b" if flipped else "a", 0.6, 0.4 if flipped else 0.6)
        return AttackStep(k, k, True, flipped, p, 20.0 - k, np.zeros(4))

    r = AttackResult("fft", "remove", 0.0, 0, "a", SR, [step(1, False), step(2, True),
                                                        step(5, False)])
    assert attack_verdict(r) == ("fft: flips at k = 2 to b 0.600, SNR 18.0 dB; [yellow]does not "
                                 "persist[/]: a is on top again at k = 5")
    r.steps = [step(1, False)]
    assert attack_verdict(r).startswith("fft: no flip up to k = 1")


def test_rerunning_into_a_result_folder_replaces_it_with_a_note(files, tmp_path):
    import os
    import stat

    _, model, clip = files
    out = tmp_path / "res"
    assert invoke("run", "--onnx", model, clip, "--out", out, "--quiet", *FAST)[0] == 0
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~mask  # the user's mode, not 0700
    code, _, stderr = invoke("run", "--onnx", model, clip, "--out", out, "--quiet", *FAST)
    assert code == 0 and f"replaced the earlier results in {out}/" in stderr
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    code, _, stderr = invoke("run", "--onnx", model, clip, "--out", mine, *FAST)
    assert code == 2 and "did not write" in stderr
    assert (mine / "thesis.tex").read_text() == "precious"


def test_explicit_cuda_that_cannot_start_is_an_error(files):
    import onnxruntime as ort

    _, model, _ = files
    code, stdout, stderr = invoke("info", "--onnx", model, "--provider", "cuda")
    if code == 0 and "CUDAExecutionProvider" in stdout:
        pytest.skip("CUDA works here")
    assert code == 2 and stderr.startswith("error:") and "cuda" in stderr
    assert len(stderr.strip().splitlines()) == 1
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert "provider auto" in stderr
    code, stdout, _ = invoke("info", "--onnx", model, "--provider", "auto")
    assert code == 0


def test_auto_provider_says_when_it_fell_back_to_the_cpu():
    import onnxruntime as ort

    code, stdout, stderr = invoke("run", "--iterations", "1", "--search-limit", "30",
                                  "--minimal-budget", "20", "--quiet", "--json")
    assert code == 0
    doc = json.loads(stdout)
    listed = "CUDAExecutionProvider" in ort.get_available_providers()
    fell_back = listed and doc["model"]["provider"] == "CPUExecutionProvider"
    assert doc["model"]["cuda_fallback"] is fell_back
    assert ("CUDA did not start" in " ".join(stderr.split())) is fell_back
