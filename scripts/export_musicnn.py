"""Export musicnn's MTT_musicnn tagger to one ONNX graph: 16 kHz waveform in, 50 tags out.

Runs in its own virtual environment (TensorFlow, tf-keras, tf2onnx, librosa and musicnn
never enter freqrex's runtime); scripts/README.md gives the commands and the numbers.

    /work/musicnn-venv/bin/python scripts/export_musicnn.py --clips /tmp/real_clips/10s

Steps:

1. rebuild the network with musicnn's own ``models.define_model`` (the shipped ``.meta``
   graph is TF 1.12's and does not import into TF 2), restore the shipped checkpoint,
   freeze it and convert it with tf2onnx: ``[N, 187, 96]`` log-mel patches -> ``[N, 50]``
   sigmoid probabilities;
2. put musicnn's front end in front of it with the onnx helper API (see
   :func:`front_end_nodes`) and the patch average behind it;
3. check TF against ONNX on the same patches, the in-graph front end against librosa,
   and the whole graph against musicnn's own ``extractor`` on the clips given.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # musicnn uses tf.compat.v1.layers
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "freqrex" / "data" / "musicnn_mtt.onnx"
SR, N_FFT, HOP, N_MELS = 16000, 512, 256, 96
PATCH = 187  # librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1
OPSET = 17
MODEL = "MTT_musicnn"
TEST_DATA = ROOT / "tests" / "data" / "musicnn_reference.json"


# -- 1. the network, from the checkpoint ---------------------------------------------------------


def network_onnx(seed_patches: np.ndarray) -> tuple[onnx.ModelProto, np.ndarray]:
    """The frozen TF network as ONNX, and TF's own output on ``seed_patches``."""
    import tensorflow as tf
    import tf2onnx
    from musicnn import configuration, models

    tf.compat.v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        # exactly as musicnn.extractor builds it, with is_training a constant False so
        # batch norm uses its moving statistics and dropout vanishes when frozen
        with tf.name_scope("model"):
            x = tf.compat.v1.placeholder(tf.float32, [None, PATCH, N_MELS], name="patches")
            outs = models.define_model(x, False, MODEL, len(configuration.MTT_LABELS))
            tf.nn.sigmoid(outs[0], name="probabilities")
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            checkpoint = str(Path(models.__file__).parent / MODEL) + "/"
            tf.compat.v1.train.Saver().restore(sess, checkpoint)
            expected = sess.run("model/probabilities:0", {"model/patches:0": seed_patches})
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), ["model/probabilities"])
    model, _ = tf2onnx.convert.from_graph_def(
        frozen, input_names=["model/patches:0"], output_names=["model/probabilities:0"],
        opset=OPSET)
    return model, expected


# -- 2. front end and patch average ------------------------------------------------------------


def dft_basis() -> np.ndarray:
    """Conv1d weights ``[2 * 257, 1, 512]``: periodic-Hann-windowed cos and -sin rows.

    ``librosa.stft`` windows each frame with ``get_window("hann", 512, fftbins=True)``
    and takes its rfft; these rows are that rfft's real and imaginary parts.
    """
    n = np.arange(N_FFT)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)
    k = np.arange(N_FFT // 2 + 1)[:, None]
    angle = 2 * np.pi * k * n[None, :] / N_FFT
    rows = np.concatenate([np.cos(angle), -np.sin(angle)]) * window
    return rows[:, None, :].astype(np.float32)


def mel_basis() -> np.ndarray:
    """librosa's slaney mel matrix ``[96, 257]`` (fmin 0, fmax 8 kHz), librosa's defaults."""
    import librosa

    return librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


def _const(name: str, values, dtype=np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def front_end_nodes(pad_mode: str) -> tuple[list, list]:
    """Nodes and initializers from ``waveform [B, S]`` to ``patches [B * P, 187, 96]``.

    As ``musicnn.extractor.batch_data`` computes it: centred STFT (``pad_mode``-padded by
    256 samples each side), power, mel matrix, a round trip through float16 (musicnn
    stores the spectrogram as float16, and its training set was stored so too), then
    ``log10(10000 * mel + 1)``; cut into ``P = max(T // 187, 1)`` consecutive 187-frame
    patches, dropping the tail as musicnn does. Clips under 3 s (which musicnn refuses)
    get their one patch padded with zeros, i.e. silence after the log.
    """
    inits = [
        numpy_helper.from_array(dft_basis(), "fe_dft"),
        numpy_helper.from_array(mel_basis(), "fe_mel"),
        _const("fe_axis1", [1]), _const("fe_pads", [0, 0, N_FFT // 2, 0, 0, N_FFT // 2]),
        _const("fe_patch", [PATCH]), _const("fe_one", [1]), _const("fe_zero", [0]),
        _const("fe_nmels", [N_MELS]), _const("fe_0", [0]),
        _const("fe_split", [N_FFT // 2 + 1, N_FFT // 2 + 1]),
        _const("fe_scale", [10000.0], np.float32), _const("fe_unit", [1.0], np.float32),
        _const("fe_inv_ln10", [1.0 / np.log(10.0)], np.float32),
    ]
    node = helper.make_node
    nodes = [
        node("Unsqueeze", ["waveform", "fe_axis1"], ["fe_w3"]),
        node("Pad", ["fe_w3", "fe_pads"], ["fe_padded"], mode=pad_mode),
        node("Conv", ["fe_padded", "fe_dft"], ["fe_spec"], strides=[HOP]),
        node("Split", ["fe_spec", "fe_split"], ["fe_re", "fe_im"], axis=1),
        node("Mul", ["fe_re", "fe_re"], ["fe_re2"]),
        node("Mul", ["fe_im", "fe_im"], ["fe_im2"]),
        node("Add", ["fe_re2", "fe_im2"], ["fe_power"]),             # [B, 257, T]
        node("MatMul", ["fe_mel", "fe_power"], ["fe_melspec"]),      # [B, 96, T]
        node("Transpose", ["fe_melspec"], ["fe_melT"], perm=[0, 2, 1]),
        node("Cast", ["fe_melT"], ["fe_half"], to=TensorProto.FLOAT16),
        node("Cast", ["fe_half"], ["fe_mel32"], to=TensorProto.FLOAT),
        node("Mul", ["fe_mel32", "fe_scale"], ["fe_scaled"]),
        node("Add", ["fe_scaled", "fe_unit"], ["fe_plus1"]),
        node("Log", ["fe_plus1"], ["fe_ln"]),
        node("Mul", ["fe_ln", "fe_inv_ln10"], ["fe_logmel"]),         # [B, T, 96]
        # P = max(T // 187, 1), frames used = P * 187, padded with zeros if T < 187
        node("Shape", ["fe_logmel"], ["fe_shape"]),
        node("Gather", ["fe_shape", "fe_0"], ["fe_B"]),
        node("Gather", ["fe_shape", "fe_axis1"], ["fe_T"]),
        node("Div", ["fe_T", "fe_patch"], ["fe_Pfloor"]),
        node("Max", ["fe_Pfloor", "fe_one"], ["fe_P"]),
        node("Mul", ["fe_P", "fe_patch"], ["fe_used"]),
        node("Sub", ["fe_used", "fe_T"], ["fe_short"]),
        node("Max", ["fe_short", "fe_zero"], ["fe_tail"]),
        node("Concat", ["fe_zero", "fe_zero", "fe_zero", "fe_zero", "fe_tail", "fe_zero"],
             ["fe_tpads"], axis=0),
        node("Pad", ["fe_logmel", "fe_tpads"], ["fe_long"], mode="constant"),
        node("Slice", ["fe_long", "fe_zero", "fe_used", "fe_axis1"], ["fe_cut"]),
        node("Mul", ["fe_B", "fe_P"], ["fe_BP"]),
        node("Concat", ["fe_BP", "fe_patch", "fe_nmels"], ["fe_pshape"], axis=0),
        node("Reshape", ["fe_cut", "fe_pshape"], ["patches"]),
    ]
    return nodes, inits


def assemble(net: onnx.ModelProto, pad_mode: str, labels: list[str],
             with_patches: bool = False) -> onnx.ModelProto:
    """waveform -> front end -> network -> mean over each clip's patches -> ``[B, 50]``."""
    net = onnx.compose.add_prefix(net, "net_")
    g = net.graph
    (net_in,), (net_out,) = g.input, g.output
    for n in g.node:  # the network reads our patches
        n.input[:] = ["patches" if i == net_in.name else i for i in n.input]
    fe_nodes, fe_inits = front_end_nodes(pad_mode)
    node = helper.make_node
    back = [
        node("Concat", ["fe_B", "fe_P", "back_classes"], ["back_shape"], axis=0),
        node("Reshape", [net_out.name, "back_shape"], ["back_per_patch"]),
        node("ReduceMean", ["back_per_patch"], ["probabilities"], axes=[1], keepdims=0),
    ]
    inits = fe_inits + list(g.initializer) + [_const("back_classes", [len(labels)])]
    outputs = [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                             ["batch", len(labels)])]
    if with_patches:
        outputs.append(helper.make_tensor_value_info("patches", TensorProto.FLOAT,
                                                     ["patches", PATCH, N_MELS]))
    graph = helper.make_graph(
        fe_nodes + list(g.node) + back, "musicnn_mtt",
        [helper.make_tensor_value_info("waveform", TensorProto.FLOAT, ["batch", "samples"])],
        outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=list(net.opset_import),
                              producer_name="freqrex scripts/export_musicnn.py")
    model.ir_version = net.ir_version
    licence = (Path(sys.modules["musicnn"].__file__).parent.parent
               / "musicnn-0.1.0.dist-info" / "LICENSE.md")
    meta = {
        "sample_rate": str(SR),
        "labels": json.dumps(labels),
        "source": "musicnn 0.1.0 (PyPI) MTT_musicnn, MagnaTagATune 50 tags; "
                  "github.com/jordipons/musicnn",
        "licence": licence.read_text().strip() if licence.exists() else "ISC",
        "front_end": f"centred STFT n_fft {N_FFT} hop {HOP} pad {pad_mode}, power, slaney mel "
                     f"{N_MELS}, float16 round trip, log10(10000 x + 1); "
                     f"mean of sigmoid over {PATCH}-frame (3 s) patches",
    }
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


# -- 3. verification ---------------------------------------------------------------------------


def musicnn_reference(path: Path, pad_mode: str) -> np.ndarray:
    """musicnn's own pipeline on a file: the mean of its taggram over 3 s patches."""
    import librosa
    from musicnn import extractor

    original = librosa.feature.melspectrogram
    librosa.feature.melspectrogram = functools.partial(original, pad_mode=pad_mode)
    try:
        taggram, _ = extractor.extractor(str(path), model=MODEL, extract_features=False)
    finally:
        librosa.feature.melspectrogram = original
    return np.asarray(taggram, dtype=np.float64).mean(axis=0)


def librosa_patches(audio: np.ndarray, pad_mode: str) -> np.ndarray:
    """``musicnn.extractor.batch_data``'s patches for a waveform already at 16 kHz."""
    import librosa

    rep = librosa.feature.melspectrogram(y=audio, sr=SR, hop_length=HOP, n_fft=N_FFT,
                                         n_mels=N_MELS, pad_mode=pad_mode).T
    rep = np.log10(10000 * rep.astype(np.float16) + 1)
    n = rep.shape[0] // PATCH
    return np.asarray(rep[: n * PATCH], dtype=np.float32).reshape(n, PATCH, N_MELS)


def verify(model: onnx.ModelProto, clips: list[Path], pad_mode: str, labels: list[str]) -> dict:
    """ONNX against librosa's patches and against musicnn's extractor, clip by clip."""
    import onnxruntime as ort
    import soundfile as sf

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rows = []
    for path in clips:
        audio, rate = sf.read(path, dtype="float32")
        assert rate == SR and audio.ndim == 1, path
        probs, patches = session.run(None, {"waveform": audio[None]})
        row = {"clip": path.name, "front_end_max_abs": float(
            np.abs(patches - librosa_patches(audio, pad_mode)).max())}
        onnx_top = [labels[i] for i in np.argsort(-probs[0])[:3]]
        for mode in ("reflect", "constant"):
            ref = musicnn_reference(path, mode)
            ref_top = [labels[i] for i in np.argsort(-ref)[:3]]
            row[mode] = {"max_abs": float(np.abs(probs[0] - ref).max()),
                         "top3_same_order": onnx_top == ref_top,
                         "top3_same_set": set(onnx_top) == set(ref_top),
                         "top1_same": onnx_top[0] == ref_top[0], "reference_top3": ref_top}
        row["onnx_top3"] = onnx_top
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {"clips": len(rows), "pad_mode": pad_mode,
               "front_end_max_abs": max(r["front_end_max_abs"] for r in rows)}
    for mode in ("reflect", "constant"):
        diffs = [r[mode]["max_abs"] for r in rows]
        summary[f"vs_musicnn_{mode}"] = {
            "max_abs_max": max(diffs), "max_abs_median": float(np.median(diffs)),
            "top1_agree": sum(r[mode]["top1_same"] for r in rows),
            "top3_set_agree": sum(r[mode]["top3_same_set"] for r in rows),
            "top3_order_agree": sum(r[mode]["top3_same_order"] for r in rows)}
    return {"summary": summary, "clips": rows}


def synthetic_clip(seconds: float) -> np.ndarray:
    """The test clip (tests/test_musicnn.py builds the same): a chord, vibrato, clicks.

    No random numbers, so nothing depends on a generator's version.
    """
    t = np.arange(int(round(seconds * SR))) / SR
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 330 * t)
         + 0.1 * np.sin(2 * np.pi * 440 * t + 0.5 * np.sin(2 * np.pi * 5 * t))
         + 0.4 * np.exp(-40 * (t % 0.5)) * np.sin(2 * np.pi * 1000 * t))
    return x.astype(np.float32)


def write_test_data(model: onnx.ModelProto, path: Path, pad_mode: str) -> None:
    """musicnn's own output and the exported graph's on the synthetic clip, as JSON."""
    import tempfile

    import onnxruntime as ort
    import soundfile as sf

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    clip = synthetic_clip(6.5)  # 406 frames: two patches and a dropped tail
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "synthetic.wav"
        sf.write(wav, clip, SR, subtype="FLOAT")
        reference = musicnn_reference(wav, pad_mode)
    exported = session.run(None, {"waveform": clip[None]})[0][0]
    path.write_text(json.dumps({
        "clip": "synthetic_clip(6.5) in tests/test_musicnn.py and scripts/export_musicnn.py",
        "clip_sum": float(clip.astype(np.float64).sum()),
        "clip_abs_sum": float(np.abs(clip.astype(np.float64)).sum()),
        "musicnn": [float(v) for v in reference], "exported": [float(v) for v in exported],
        "pad_mode": pad_mode, "numpy": np.__version__,
    }, indent=1) + "\n")
    print(f"wrote {path}: exported vs musicnn max abs {np.abs(exported - reference).max():.2e}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="ONNX file to write")
    parser.add_argument("--clips", type=Path, help="folder of 16 kHz mono WAVs to verify on")
    parser.add_argument("--max-clips", type=int, default=20)
    parser.add_argument("--pad-mode", choices=("reflect", "constant"), default="reflect",
                        help="STFT edge padding (reflect: librosa < 0.10, which musicnn "
                             "was trained with)")
    parser.add_argument("--report", type=Path, help="write the verification JSON here")
    parser.add_argument("--test-data", type=Path, default=TEST_DATA,
                        help="write the synthetic-clip reference values for the tests here")
    args = parser.parse_args(argv)
    from musicnn import configuration

    labels = list(configuration.MTT_LABELS)
    rng = np.random.default_rng(0)
    seed_patches = rng.uniform(0, 3, size=(4, PATCH, N_MELS)).astype(np.float32)
    net, expected = network_onnx(seed_patches)
    import onnxruntime as ort

    net_session = ort.InferenceSession(net.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    got = net_session.run(None, {net.graph.input[0].name: seed_patches})[0]
    tf_vs_onnx = float(np.abs(got - expected).max())
    print(f"network: TF vs ONNX max abs difference {tf_vs_onnx:.2e} on 4 random patches")
    assert tf_vs_onnx < 1e-5, tf_vs_onnx
    model = assemble(net, args.pad_mode, labels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    report: dict = {"tf_vs_onnx_network_max_abs": tf_vs_onnx, "numpy": np.__version__}
    write_test_data(model, args.test_data, args.pad_mode)
    if args.clips is not None:
        found = sorted(args.clips.glob("*.wav"))
        # evenly spread over the sorted names, so every package of the set is represented
        clips = [found[i] for i in np.unique(
            np.linspace(0, len(found) - 1, min(args.max_clips, len(found))).astype(int))]
        checked = assemble(net, args.pad_mode, labels, with_patches=True)
        report.update(verify(checked, clips, args.pad_mode, labels))
        print(json.dumps(report["summary"], indent=1))
    if args.report is not None:
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
