"""The command line: outputs of `run` and `info`, and one-line errors on bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from oracles import BANDS, SR, bad_model, band_energy_model, make_clip
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
        "necessary.wav", "complete.wav"}
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
    t = np.arange(16_384)
    close_call = 0.3 * (np.cos(2 * np.pi * 410 * t / 16_384)
                        + 0.9 * np.cos(2 * np.pi * 1536 * t / 16_384))
    clip = d / "close.wav"
    sf.write(clip, close_call.astype(np.float32), SR, subtype="FLOAT")
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
