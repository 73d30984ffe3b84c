"""Train freqrex's bundled reference classifier and write its data files.

The script renders a training set and a disjoint held-out test set of General
MIDI instrument melodies with ``render.py``, trains a small log-mel CNN whose
front end (windowed DFT as a fixed convolution, mel filterbank, log) lives
inside the network, exports it to ONNX with a dynamic ``[batch, samples]``
input, checks the export against PyTorch, measures accuracy and speed with
onnxruntime, and writes:

- ``freqrex/data/reference.onnx``
- ``freqrex/data/reference.json``
- ``freqrex/data/examples/<label>.wav`` (4 s, one per class, confidently right)
- ``freqrex/data/examples/long_30s.flac`` (30 s, correctly classified)

It needs torch, onnx, onnxruntime, numpy and soundfile (not freqrex's own
dependencies) and the ``fluidsynth`` program.  Usage::

    python scripts/train_reference_model.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import render  # noqa: E402  (sibling script, not a package)

LABELS = render.LABELS
SAMPLE_RATE = render.SAMPLE_RATE
N_FFT = 512
HOP = 256
N_MELS = 64
LOG_FLOOR = 1e-8  # -80 dB re a full-scale sine: keeps quiet harmonics visible
CLIP_SECONDS = 3.0
EXAMPLE_SECONDS = 4.0
LONG_SECONDS = 30.0
LONG_LABEL = "violin"
RENDER_CHUNK = 50
REPO = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- front end


def hz_to_mel(hz):
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    """Inverse of ``hz_to_mel``."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels=N_MELS, n_fft=N_FFT, sample_rate=SAMPLE_RATE) -> np.ndarray:
    """Triangular mel filters (peak 1) on the rfft bins, 0 Hz to Nyquist.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(n_mels, n_fft // 2 + 1)``.
    """
    bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2), n_mels + 2))
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - low) / (centre - low)
    falling = (high - bins) / (high - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    # With 64 mels and 31.25 Hz bins the narrowest low filters still cover a bin.
    assert weights.sum(axis=1).min() > 0.5
    return weights.astype(np.float32)


def dft_kernel(n_fft=N_FFT) -> np.ndarray:
    """Hann-windowed real and imaginary DFT rows as Conv1d weights.

    Scaled by the window sum, so a full-scale sine gives magnitude 0.5 (power
    0.25) in its bin whatever ``n_fft`` is.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(2 * (n_fft // 2 + 1), 1, n_fft)``, real rows first.
    """
    window = np.hanning(n_fft + 1)[:-1]  # periodic Hann
    angle = 2 * np.pi * np.outer(np.arange(n_fft // 2 + 1), np.arange(n_fft)) / n_fft
    rows = np.concatenate([np.cos(angle) * window, -np.sin(angle) * window]) / window.sum()
    return rows[:, None, :].astype(np.float32)


class LogMel(nn.Module):
    """Waveform ``[batch, samples]`` to normalised log-mel ``[batch, 1, mels, frames]``.

    All weights are fixed buffers.  The input is zero-padded by half a window
    on each side so frame ``t`` is centred on sample ``t * hop``.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("kernel", torch.from_numpy(dft_kernel()))
        self.register_buffer("mel", torch.from_numpy(mel_filterbank()))
        # A fixed affine, set from training data by ``fit_normalisation``.
        self.register_buffer("offset", torch.zeros(()))
        self.register_buffer("scale", torch.ones(()))

    def forward(self, waveform):
        x = F.pad(waveform.unsqueeze(1), (N_FFT // 2, N_FFT // 2))
        spec = F.conv1d(x, self.kernel, stride=HOP)
        bins = N_FFT // 2 + 1
        power = spec[:, :bins] ** 2 + spec[:, bins:] ** 2
        logmel = torch.log(torch.matmul(self.mel, power) + LOG_FLOOR)
        return ((logmel - self.offset) * self.scale).unsqueeze(1)


def conv_block(c_in, c_out, pool):
    """3x3 conv, batch norm, ReLU and optional max pooling (freq, time)."""
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(pool))
    return nn.Sequential(*layers)


class ReferenceNet(nn.Module):
    """Log-mel front end, four conv blocks, mean+max pooling, linear logits.

    Pooling over the whole time axis at the end makes any input length work;
    the three 2x2 pools keep 30 s inputs cheap.
    """

    def __init__(self, n_classes=6):
        super().__init__()
        self.frontend = LogMel()
        self.features = nn.Sequential(
            conv_block(1, 16, (2, 2)),
            conv_block(16, 32, (2, 2)),
            conv_block(32, 64, (2, 2)),
            conv_block(64, 64, None),
        )
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(128, n_classes)

    def forward(self, waveform):
        h = self.features(self.frontend(waveform))
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.classifier(self.dropout(pooled))


# ----------------------------------------------------------------------------- data


def _render_task(task):
    """Process-pool worker: render one chunk of clips of one label."""
    label, seconds, seeds = task
    return render.render_clips(label, seconds, seeds)


def render_split(name, seed_base, per_class, seconds, cache_dir, workers):
    """Render (or load from cache) ``per_class`` clips of every label.

    Clip ``i`` of a label uses seed ``seed_base + i``; the seed bases of the
    training, test and example sets are far apart, so the sets are disjoint.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Waveforms ``(n, samples)`` float32 and labels ``(n,)`` int64.
    """
    key = f"{name}_{seed_base}_{per_class}_{seconds:g}s_{'-'.join(LABELS)}"
    wav_path = cache_dir / f"{key}.npy"
    if wav_path.exists():
        waves = np.load(wav_path, allow_pickle=False)
    else:
        tasks = []
        for label in LABELS:
            for first in range(0, per_class, RENDER_CHUNK):
                last = min(first + RENDER_CHUNK, per_class)
                tasks.append((label, seconds, [seed_base + i for i in range(first, last)]))
        with ProcessPoolExecutor(workers) as pool:
            waves = np.concatenate(list(pool.map(_render_task, tasks)))
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(wav_path, waves, allow_pickle=False)
    labels = np.repeat(np.arange(len(LABELS)), per_class)
    return waves, labels


def augment(waves, rng, length):
    """Random crop, gain (-20..0 dB) and white noise for one training batch.

    Parameters
    ----------
    waves : numpy.ndarray
        Clean clips ``(batch, samples)``.
    rng : numpy.random.Generator
        Source of randomness.
    length : int
        Crop length in samples.

    Returns
    -------
    numpy.ndarray
        float32 ``(batch, length)`` in [-1, 1].
    """
    batch = len(waves)
    starts = rng.integers(0, waves.shape[1] - length + 1, size=batch)
    out = np.stack([w[s : s + length] for w, s in zip(waves, starts, strict=True)])
    out *= 10 ** (rng.uniform(-20, 0, size=(batch, 1)) / 20)
    # Noise from -90 to -50 dBFS rms on half the clips, so the model ignores faint hiss.
    noisy = rng.random((batch, 1)) < 0.5
    noise_std = 10 ** (rng.uniform(-90, -50, size=(batch, 1)) / 20) * noisy
    out += noise_std * rng.standard_normal(out.shape)
    return np.clip(out, -1, 1).astype(np.float32)


# ----------------------------------------------------------------------------- training


def fit_normalisation(model, waves):
    """Set the front end's fixed affine to the training data's log-mel mean and std."""
    with torch.no_grad():
        logmel = model.frontend(torch.from_numpy(waves))
    model.frontend.offset.fill_(float(logmel.mean()))
    model.frontend.scale.fill_(1.0 / float(logmel.std()))


def train(model, waves, labels, epochs, batch_size, seed, log):
    """Train with AdamW and a one-cycle schedule on augmented random crops."""
    rng = np.random.default_rng(seed)
    steps_per_epoch = len(waves) // batch_size
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=3e-3, total_steps=epochs * steps_per_epoch, pct_start=0.2
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(waves))
        total, correct, seen = 0.0, 0, 0
        for step in range(steps_per_epoch):
            index = order[step * batch_size : (step + 1) * batch_size]
            # Crop length varies per batch (1 to 3 s) so no single length is special.
            length = int(rng.integers(4, 13)) * SAMPLE_RATE // 4
            x = torch.from_numpy(augment(waves[index], rng, length))
            y = torch.from_numpy(labels[index])
            logits = model(x)
            loss = loss_fn(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(index)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(index)
        log(f"epoch {epoch + 1:2d}/{epochs}  loss {total / seen:.4f}  acc {correct / seen:.3f}")


# ----------------------------------------------------------------------------- export


def export_onnx(model, path):
    """Export with dynamic batch and sample axes and write label metadata."""
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (torch.zeros(1, SAMPLE_RATE),),
        str(path),
        input_names=["waveform"],
        output_names=["logits"],
        dynamic_axes={"waveform": {0: "batch", 1: "samples"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(str(path))
    props = {"sample_rate": str(SAMPLE_RATE), "labels": json.dumps(LABELS)}
    onnx.helper.set_model_props(proto, props)
    proto.doc_string = "freqrex reference classifier: raw 16 kHz waveform -> instrument logits"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def make_session(path):
    """onnxruntime CPU session with default options."""
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def verify_onnx(model, session, rng, log):
    """Compare ONNX and PyTorch logits on 0.5 s, 4 s and 30 s at batch 1 and 8."""
    model.eval()
    worst = 0.0
    for seconds in (0.5, 4.0, 30.0):
        for batch in (1, 8):
            x = (0.3 * rng.standard_normal((batch, int(seconds * SAMPLE_RATE)))).astype(np.float32)
            with torch.no_grad():
                expected = model(torch.from_numpy(x)).numpy()
            got = session.run(["logits"], {"waveform": x})[0]
            diff = float(np.abs(expected - got).max())
            log(f"verify {seconds:4.1f} s batch {batch}: max abs diff {diff:.2e}")
            worst = max(worst, diff)
    if worst >= 1e-3:
        raise RuntimeError(f"ONNX and PyTorch disagree by {worst:.2e}")
    return worst


def predict(session, waves, batch_size=32):
    """Softmax probabilities of the ONNX model for ``waves`` (n, samples)."""
    out = []
    for first in range(0, len(waves), batch_size):
        chunk = np.ascontiguousarray(waves[first : first + batch_size], dtype=np.float32)
        out.append(session.run(["logits"], {"waveform": chunk})[0])
    logits = np.concatenate(out)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


def accuracy_report(probs, labels):
    """Overall accuracy, per-class accuracy and confusion matrix (rows = truth)."""
    guess = probs.argmax(axis=1)
    confusion = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    np.add.at(confusion, (labels, guess), 1)
    per_class = {lab: float(confusion[i, i] / confusion[i].sum()) for i, lab in enumerate(LABELS)}
    return float((guess == labels).mean()), per_class, confusion


def benchmark(session, shape, repeats=30):
    """Median wall time in ms of one onnxruntime call on white noise of ``shape``."""
    x = (0.1 * np.random.default_rng(0).standard_normal(shape)).astype(np.float32)
    for _ in range(5):
        session.run(["logits"], {"waveform": x})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(["logits"], {"waveform": x})
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


# ----------------------------------------------------------------------------- examples


def pick_example(session, label, seconds, first_seed, min_confidence, tries=200):
    """First example seed whose clip the model gets right with enough confidence."""
    target = LABELS.index(label)
    for seed in range(first_seed, first_seed + tries):
        clip = render.render_clip(label, seconds, seed)
        # Score the clip as it will be read back from 16-bit PCM.
        clip = np.round(clip * 32767) / 32767
        probs = predict(session, clip[None].astype(np.float32))[0]
        if probs.argmax() == target and probs[target] > min_confidence:
            return seed, clip, float(probs[target])
    raise RuntimeError(f"no {label} example above {min_confidence} in {tries} seeds")


def write_examples(session, folder, log):
    """Write one 4 s example per class and a 30 s clip; return their seeds."""
    folder.mkdir(parents=True, exist_ok=True)
    chosen = {}
    for label in LABELS:
        seed, clip, confidence = pick_example(
            session, label, EXAMPLE_SECONDS, render.EXAMPLE_SEED_BASE, 0.8
        )
        sf.write(str(folder / f"{label}.wav"), clip, SAMPLE_RATE, subtype="PCM_16")
        chosen[label] = {"seed": seed, "seconds": EXAMPLE_SECONDS, "confidence": confidence}
        log(f"example {label}: seed {seed}, p = {confidence:.3f}")
    seed, clip, confidence = pick_example(
        session, LONG_LABEL, LONG_SECONDS, render.EXAMPLE_SEED_BASE + 1_000_000, 0.5
    )
    sf.write(str(folder / "long_30s.flac"), clip, SAMPLE_RATE, subtype="PCM_16")
    chosen["long_30s"] = {
        "label": LONG_LABEL,
        "seed": seed,
        "seconds": LONG_SECONDS,
        "confidence": confidence,
    }
    log(f"long_30s ({LONG_LABEL}): seed {seed}, p = {confidence:.3f}")
    return chosen


# ----------------------------------------------------------------------------- main


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--test-per-class", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="torch and augmentation seed")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/freqrex_reference_cache"))
    parser.add_argument("--out", type=Path, default=REPO / "freqrex" / "data")
    return parser.parse_args(argv)


def main(argv=None):
    """Render, train, export, verify, measure and write the bundled files."""
    args = parse_args(argv)
    started = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)

    train_x, train_y = render_split(
        "train", render.TRAIN_SEED_BASE, args.train_per_class, CLIP_SECONDS, args.cache,
        args.workers,
    )  # fmt: skip
    test_x, test_y = render_split(
        "test", render.TEST_SEED_BASE, args.test_per_class, CLIP_SECONDS, args.cache, args.workers
    )
    log(f"rendered {len(train_x)} training and {len(test_x)} test clips of {CLIP_SECONDS:g} s")

    model = ReferenceNet(len(LABELS))
    fit_normalisation(model, train_x[:: max(1, len(train_x) // 200)])
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params} trainable parameters")
    train_start = time.perf_counter()
    train(model, train_x, train_y, args.epochs, args.batch_size, args.seed, log)
    train_seconds = time.perf_counter() - train_start
    log(f"trained in {train_seconds:.1f} s")

    onnx_path = args.out / "reference.onnx"
    export_onnx(model, onnx_path)
    session = make_session(onnx_path)
    max_diff = verify_onnx(model, session, np.random.default_rng(1), log)

    accuracy, per_class, confusion = accuracy_report(predict(session, test_x), test_y)
    log(f"held-out accuracy {accuracy:.4f} on {len(test_x)} clips")
    for label in LABELS:
        log(f"  {label:8s} {per_class[label]:.3f}")
    log("confusion (rows = truth, columns = prediction, order " + ", ".join(LABELS) + ")")
    for label, row in zip(LABELS, confusion, strict=True):
        log(f"  {label:8s} " + " ".join(f"{v:4d}" for v in row))

    short_x = test_x[:, : SAMPLE_RATE // 2]
    short_acc = accuracy_report(predict(session, short_x), test_y)[0]
    quiet_acc = accuracy_report(predict(session, test_x * 0.1), test_y)[0]
    log(f"held-out accuracy on first 0.5 s: {short_acc:.4f}; at -20 dB: {quiet_acc:.4f}")

    ms_30s = benchmark(session, (1, 30 * SAMPLE_RATE))
    ms_batch = benchmark(session, (16, 5 * SAMPLE_RATE))
    log(f"onnxruntime CPU: 30 s batch 1 {ms_30s:.1f} ms; 16 x 5 s {ms_batch:.1f} ms")

    examples = write_examples(session, args.out / "examples", log)
    summary = {
        "labels": LABELS,
        "sample_rate": SAMPLE_RATE,
        "heldout_accuracy": accuracy,
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
        "heldout_accuracy_first_0_5s": short_acc,
        "heldout_accuracy_minus_20db": quiet_acc,
        "n_train": int(len(train_x)),
        "n_test": int(len(test_x)),
        "clip_seconds": CLIP_SECONDS,
        "train_seconds": round(train_seconds, 1),
        "epochs": args.epochs,
        "n_parameters": int(n_params),
        "onnx_bytes": onnx_path.stat().st_size,
        "onnx_max_abs_diff_vs_torch": max_diff,
        "inference_ms_30s_batch1": round(ms_30s, 2),
        "inference_ms_5s_batch16": round(ms_batch, 2),
        "examples": examples,
        "seeds": {
            "train": [render.TRAIN_SEED_BASE, render.TRAIN_SEED_BASE + args.train_per_class],
            "test": [render.TEST_SEED_BASE, render.TEST_SEED_BASE + args.test_per_class],
            "torch": args.seed,
        },
    }
    (args.out / "reference.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"wrote {onnx_path} ({summary['onnx_bytes']} bytes) and reference.json")


if __name__ == "__main__":
    main()
