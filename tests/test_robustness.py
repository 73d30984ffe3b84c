"""Bad input, failures and big inputs (issue 10): each case ends in one `error:` line, exit 2,
before any work and with nothing left behind, or is handled properly.

Models are oracles built with the onnx helper API (tests/oracles.py); files are written here.
"""

import ast
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
from onnx import TensorProto, helper, numpy_helper
from oracles import BANDS, SR, band_energy_model, callable_band_oracle, make_clip
from typer.testing import CliRunner

import freqrex
from freqrex.audio import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, check_sample_rate, load_audio
from freqrex.cli import app
from freqrex.errors import FreqrexError, FreqrexWarning, ModelError, OutputError
from freqrex.model import CallableModel, OnnxModel
from freqrex.output.folders import check_output_file, check_output_folder

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
AS_ROOT = "root ignores permission bits, so a chmod-ed folder stays writable"
FAST = ["--iterations", "2", "--search-limit", "120", "--seed", "1"]
PACKAGE = Path(freqrex.__file__).parent


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def one_error_line(code, stdout, stderr, words):
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert words in lines[0], lines[0]
    assert "Traceback" not in stdout + stderr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("robust")
    model = band_energy_model(d / "bands.onnx", BANDS)
    clip = d / "clip.wav"
    sf.write(clip, make_clip(0, n=8192), SR, subtype="FLOAT")
    return d, model, clip


def with_metadata(src, dst, **props):
    proto = onnx.load(str(src))
    for entry in proto.metadata_props:
        if entry.key in props:
            entry.value = props.pop(entry.key)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(dst))
    return dst


# -- absurd sample rates -----------------------------------------------------------------------


def test_the_sane_rate_range():
    assert check_sample_rate(16000.0) == 16000
    assert check_sample_rate(MIN_SAMPLE_RATE) == MIN_SAMPLE_RATE
    assert check_sample_rate(MAX_SAMPLE_RATE) == MAX_SAMPLE_RATE
    for bad in (MIN_SAMPLE_RATE - 1, MAX_SAMPLE_RATE + 1, 10**12, 8_670_000, 0, -1, 2.5):
        with pytest.raises(FreqrexError, match="sample rate"):
            check_sample_rate(bad)


def test_absurd_rate_in_model_metadata_is_one_line(files, tmp_path):
    # before: soxr raised MemoryError (std::bad_alloc) with a traceback
    d, model, clip = files
    huge = with_metadata(model, tmp_path / "huge.onnx", sample_rate="1e12")
    with pytest.raises(ModelError, match="metadata sample_rate 1000000000000 Hz is outside"):
        OnnxModel(huge)
    one_error_line(*invoke("run", clip, "--onnx", huge, *FAST), "is outside 1000-768000 Hz")


def test_absurd_rate_in_a_file_header_is_refused_before_resampling(files, tmp_path):
    # before: a header claiming 8.67 MHz resampled the clip down to a few samples, silently
    d, model, _ = files
    path = tmp_path / "fuzzed.wav"
    sf.write(path, make_clip(1, n=8000), 8000, subtype="FLOAT")
    data = bytearray(path.read_bytes())
    assert data[24:28] == struct.pack("<I", 8000)  # the fmt chunk's sample rate
    data[24:28] = struct.pack("<I", 8_670_000)
    path.write_bytes(bytes(data))
    with pytest.raises(FreqrexError, match="header sample rate 8670000 Hz"):
        load_audio(path, sample_rate=16000)
    one_error_line(*invoke("run", path, "--onnx", model, *FAST), "header sample rate")


def test_absurd_rate_as_an_option_is_one_line(files):
    _, model, clip = files
    one_error_line(*invoke("run", clip, "--onnx", model, "--sample-rate", "100000000", *FAST),
                   "sample_rate 100000000 Hz is outside")
    model = CallableModel(callable_band_oracle(BANDS), sample_rate=SR)
    with pytest.raises(FreqrexError, match="outside"):  # a waveform's rate, resampled
        freqrex.explain(model, make_clip(0, n=4096), sample_rate=10**9)
    with pytest.raises(FreqrexError, match="outside"):
        CallableModel(callable_band_oracle(BANDS), sample_rate=10**9)


# -- output paths that cannot be written -------------------------------------------------------


def probe_refused(folder):
    try:
        fd, path = tempfile.mkstemp(dir=folder)
    except OSError:
        return True
    os.close(fd)
    os.unlink(path)
    return False


def test_output_under_a_regular_file_is_refused_before_any_work(files, tmp_path):
    # before: PermissionError / NotADirectoryError traceback after the whole computation
    _, model, clip = files
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for out in (blocker / "out", blocker / "deep" / "er" / "out"):
        with pytest.raises(OutputError, match="is a file, not a folder"):
            check_output_folder(out)
        start = time.perf_counter()
        one_error_line(*invoke("run", clip, "--onnx", model, "--out", out, *FAST),
                       f"{blocker} is a file")
        assert time.perf_counter() - start < 5  # refused before the explanation
    report = blocker / "report.md"
    one_error_line(*invoke("evaluate", tmp_path, "--db", tmp_path / "r.sqlite", "--onnx",
                           model, "--workers", "0", "--report", report, *FAST),
                   "cannot write --report")
    assert not (tmp_path / "r.sqlite").exists()  # refused before the database was made
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path)


def test_output_on_a_read_only_file_system_is_refused(files):
    # /sys refuses new files even to root (sysfs; read-only in containers): a real refusal
    # by the operating system, testable as root
    if not Path("/sys").is_dir() or not probe_refused("/sys"):
        pytest.skip("no folder here refuses new files to this user")
    _, model, clip = files
    one_error_line(*invoke("run", clip, "--onnx", model, "--out", "/sys/freqrex-out", *FAST),
                   "folder /sys refuses new files")
    one_error_line(*invoke("attack", clip, "--onnx", model, "--out", "/sys/a/b", "--ks", "1",
                           *FAST), "refuses new files")


@pytest.mark.skipif(ROOT, reason=AS_ROOT)
def test_output_in_a_read_only_folder_is_refused(files, tmp_path):
    _, model, clip = files
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for out in (locked / "out", locked / "nested" / "out"):
            one_error_line(*invoke("run", clip, "--onnx", model, "--out", out, *FAST),
                           "not writable")
        one_error_line(*invoke("evaluate", tmp_path, "--db", locked / "x.sqlite", "--onnx",
                               model, "--workers", "0", *FAST), "cannot write results database")
    finally:
        locked.chmod(0o755)


def test_db_in_an_unwritable_place_says_why(files, tmp_path):
    # before: "not a freqrex results database"
    _, model, clip = files
    data = tmp_path / "data"
    data.mkdir()
    sf.write(data / "c.wav", make_clip(0, n=8192), SR, subtype="FLOAT")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, stdout, stderr = invoke("evaluate", data, "--db", blocker / "r.sqlite", "--onnx",
                                  model, "--workers", "0", *FAST)
    one_error_line(code, stdout, stderr, "cannot write results database")
    assert "not a freqrex results database" not in stderr


# -- input layouts -----------------------------------------------------------------------------


def channels_last_model(path, fixed_length=None):
    """The band oracle behind an input ``[B, N, 1]`` (squeezed to ``[B, N]`` inside)."""
    inner = onnx.load(str(band_energy_model(path.with_suffix(".inner.onnx"), BANDS)))
    graph = inner.graph
    squeeze_axes = numpy_helper.from_array(np.array([2], dtype=np.int64), "squeeze_axes")
    squeeze = helper.make_node("Squeeze", ["waveform_bn1", "squeeze_axes"], ["waveform"])
    length = fixed_length if fixed_length is not None else "samples"
    new_input = helper.make_tensor_value_info("waveform_bn1", TensorProto.FLOAT,
                                              ["batch", length, 1])
    nodes = [squeeze, *graph.node]
    new = helper.make_graph(nodes, "channels_last", [new_input], list(graph.output),
                            [squeeze_axes, *graph.initializer])
    model = helper.make_model(new, opset_imports=list(inner.opset_import),
                              ir_version=inner.ir_version)
    model.metadata_props.extend(inner.metadata_props)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("layout", ["[N]", "[B, N]", "[B, 1, N]", "[B, N, 1]"])
@pytest.mark.parametrize("fixed", [False, True])
def test_every_claimed_layout_gives_the_same_explanation(tmp_path, layout, fixed):
    # before: [B, N, 1] was taken as [B, 1, N] of length 1: the clip cropped to one sample
    n = 4096
    x = make_clip(2, n=n)
    path = tmp_path / "m.onnx"
    length = n if fixed else None
    if layout == "[B, N, 1]":
        channels_last_model(path, fixed_length=length)
    else:
        rank = {"[N]": 1, "[B, N]": 2, "[B, 1, N]": 3}[layout]
        band_energy_model(path, BANDS, input_rank=rank, fixed_length=length)
    model = OnnxModel(path, providers="cpu")
    assert model.input_length == length
    reference = CallableModel(callable_band_oracle(BANDS), sample_rate=SR)
    batch = np.stack([x, 0.5 * x, x[::-1].copy()])
    assert np.allclose(model(batch), reference(batch), atol=1e-6)
    kw = {"sample_rate": SR, "iterations": 2, "search_limit": 80, "seed": 3}
    got, want = freqrex.explain(model, x, **kw), freqrex.explain(reference, x, **kw)
    assert got.audio.shape == (n,)
    assert got.target == want.target
    assert np.allclose(got.responsibility, want.responsibility)


def test_a_length_of_one_sample_is_refused(tmp_path):
    path = band_energy_model(tmp_path / "one.onnx", BANDS, fixed_length=1)
    with pytest.raises(ModelError, match="one sample per waveform"):
        OnnxModel(path)


# -- strict JSON ---------------------------------------------------------------------------------


def test_non_finite_freq_range_is_one_line(files, tmp_path):
    # config rejects it; the CLI must say it in one line, naming the flag, writing nothing
    _, model, clip = files
    for text in ("100:inf", "nan:200", "-inf:100"):
        out = tmp_path / "o"
        one_error_line(*invoke("run", clip, "--onnx", model, "--freq-range", text, "--out", out),
                       "--freq-range must be two finite frequencies")
        assert not out.exists()


def test_every_json_dump_in_the_package_is_strict():
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("dump", "dumps")
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "json"):
                strict = any(k.arg == "allow_nan" and isinstance(k.value, ast.Constant)
                             and k.value.value is False for k in node.keywords)
                calls.append((f"{path.name}:{node.lineno}", strict))
    assert calls, "no json.dump found: the scan is broken"
    assert all(strict for _, strict in calls), [where for where, s in calls if not s]
    from freqrex.output.files import to_json

    with pytest.raises(ValueError):
        to_json({"x": float("inf")})
    assert json.loads(to_json({"x": 1.5})) == {"x": 1.5}


# -- tied scores -------------------------------------------------------------------------------


@pytest.mark.parametrize("value, columns, activation, p", [
    (0.25, 4, "none", 0.25),      # a uniform distribution
    (0.0, 3, "none", 0.0),        # independent probabilities, all zero
    (7.0, 4, "softmax", 0.25),    # tied logits
    (-3.0, 1, "sigmoid", 1 / (1 + np.exp(3.0))),  # one column of tied logits
])
def test_tied_scores_neither_crash_nor_change_the_activation(value, columns, activation, p):
    model = CallableModel(lambda b: np.full((b.shape[0], columns), value), sample_rate=SR)
    x = make_clip(0, n=2048)
    probs = model(x[None])
    assert model.activation == activation and np.allclose(probs, p)
    # decided once, from the first batch: later (untied) batches do not change it
    assert model.activation == activation
    with warnings.catch_warnings():  # the tie itself is reported by explain (issue 7)
        warnings.simplefilter("ignore", FreqrexWarning)
        result = freqrex.explain(model, x, sample_rate=SR, iterations=1, search_limit=40)
    assert result.target == 0 and np.isfinite(result.confidence)
    assert model.activation == activation


# -- library chatter -----------------------------------------------------------------------------


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "freqrex.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, **kw)


def test_random_bytes_named_mp3_give_one_line_with_the_real_cause(files, tmp_path):
    # before: libmpg123's "Note: Illegal Audio-MPEG-Header ..." lines on the terminal, then
    # "File does not exist or is not a regular file"
    _, model, _ = files
    path = tmp_path / "noise.mp3"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    done = run_cli("run", path, "--onnx", model, *FAST)
    one_error_line(done.returncode, done.stdout, done.stderr, "could not be read as audio")
    assert "Note:" not in done.stderr.splitlines()[0][:6]
    assert "does not exist" not in done.stderr and "not a recognised audio format" in done.stderr


def failing_model(path):
    """Valid shapes, but Reshape to [B, -1, 3] fails at run time unless 3 divides N."""
    f = TensorProto.FLOAT
    consts = [numpy_helper.from_array(np.array([0, -1, 3], dtype=np.int64), "shape"),
              numpy_helper.from_array(np.array([1], dtype=np.int64), "axis")]
    nodes = [helper.make_node("Reshape", ["waveform", "shape"], ["r"]),
             helper.make_node("ReduceSum", ["r", "axis"], ["scores"], keepdims=0)]
    graph = helper.make_graph(
        nodes, "fails", [helper.make_tensor_value_info("waveform", f, ["batch", "samples"])],
        [helper.make_tensor_value_info("scores", f, ["batch", 3])], consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    entry = model.metadata_props.add()
    entry.key, entry.value = "sample_rate", str(SR)
    onnx.save(model, str(path))
    return path


def test_an_ort_failure_is_only_our_line_with_its_message(files, tmp_path):
    # before: ORT's coloured "[E:onnxruntime:...]" log line came first
    _, _, clip = files  # 8192 samples: not a multiple of 3
    done = run_cli("run", clip, "--onnx", failing_model(tmp_path / "fails.onnx"), *FAST)
    one_error_line(done.returncode, done.stdout, done.stderr, "failed on input of shape")
    assert "onnxruntime:" not in done.stderr.split("failed on input")[0]
    assert "cannot be reshaped" in done.stderr and "\x1b[" not in done.stderr


# -- big inputs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("long") / "long.wav"
    rng = np.random.default_rng(0)
    sf.write(path, (0.1 * rng.standard_normal(120 * 16000)).astype(np.float32), 16000,
             subtype="FLOAT")
    return path


def test_a_large_run_is_announced_before_it_starts(long_clip, files):
    from freqrex.audio import long_run_notice

    _, _, clip = files
    assert long_run_notice(clip, SR, None, 3000) is None
    notice = long_run_notice(long_clip, 16000, None, 3000)
    assert notice is not None and "120 s (1920000 samples" in notice and "search_limit" in notice


def test_the_search_progress_moves_on_a_terminal(files):
    import pty

    _, model, clip = files
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "freqrex.cli", "run", str(clip), "--onnx",
                             str(model), "--iterations", "6", "--search-limit", "900"],
                            stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, text
    import re

    counts = {int(m) for m in re.findall(r"search\S*[^\n]*?(\d+)/900", text)}
    assert len(counts) >= 2, text[-2000:]  # more than the start and the end: it moved


_AS_IN_A_TERMINAL = ("import faulthandler, runpy, signal, sys; "
                     "signal.signal(signal.SIGINT, signal.default_int_handler); "
                     "faulthandler.register(signal.SIGUSR1); "
                     "sys.argv[0] = 'freqrex'; "
                     "runpy.run_module('freqrex.cli', run_name='__main__')")


@pytest.mark.parametrize("delay", [0.0, 0.7, 2.5])
def test_ctrl_c_stops_cleanly_at_any_moment(long_clip, tmp_path, delay):
    out = tmp_path / "out"
    # A shell runs background jobs with SIGINT ignored, and a child inherits that (Python
    # then installs no KeyboardInterrupt handler): start the CLI as a terminal would.
    proc = subprocess.Popen([sys.executable, "-c", _AS_IN_A_TERMINAL, "run", str(long_clip),
                             "--out", str(out), "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # the long-run warning: the command has started
    assert "warning:" in first, first
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    try:
        stdout, rest = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)   # every thread's stack, to say where it was
        time.sleep(1.0)
        proc.kill()   # a run that ignored the interrupt must not outlive the test
        _, rest = proc.communicate()
        pytest.fail(f"still running 60 s after Ctrl-C; its stderr ends:\n{rest[-4000:]}")
    # 130, or death by SIGINT itself: CPython re-raises SIGINT at exit when the interrupt
    # landed inside code it ran through PyRun_* (Numba's), whatever exit status we chose;
    # both tell a calling shell that the command was interrupted
    assert proc.returncode in (130, -signal.SIGINT), first + rest
    assert rest.strip().splitlines()[-1] == "interrupted; nothing was written"
    assert "Traceback" not in rest
    assert not out.exists() and not any(tmp_path.iterdir())  # no folder, no hidden temp
