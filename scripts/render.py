"""Render random instrument melodies to 16 kHz mono audio with FluidSynth.

Each clip is a random melody (tempo, register, notes, durations, velocities,
volume, reverb send and vibrato depth all drawn from a numpy RNG seeded by ``(seed, program)``)
for one General MIDI instrument.  The melody is written as a tiny Standard MIDI
File and rendered offline with the ``fluidsynth`` command-line program and the
FluidR3 General MIDI sound font.

Several clips of one instrument are rendered in a single FluidSynth call, one
after another with a silent gap in between, because loading the 140 MB sound
font dominates the cost of a short render.  Every segment starts from a reset
channel after a silent gap, and FluidSynth's chorus is off (its LFO runs on
absolute time), so a clip sounds nearly the same whether it is rendered alone
or in a batch: FluidSynth reuses voice state, so a few samples differ, by at
most about -30 dB relative to the peak.  A given call is fully deterministic.

Seed spaces are disjoint by construction: the command-line interface uses
seeds below ``TRAIN_SEED_BASE``, and ``train_reference_model.py`` uses seeds at
or above it, so a data set written by this script is never part of training.

Usage::

    python scripts/render.py --out heldout --per-class 20 --seconds 4 --seed 0
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000

# label -> General MIDI program (0-based) and a playable MIDI pitch range.
INSTRUMENTS = {
    "piano": (0, 36, 96),
    "organ": (19, 36, 84),
    "guitar": (24, 40, 79),
    "violin": (40, 55, 93),
    "trumpet": (56, 54, 82),
    "flute": (73, 60, 96),
}
LABELS = list(INSTRUMENTS)

# Seeds used by the CLI are seed * CLI_SEEDS_PER_RUN + i, all below TRAIN_SEED_BASE.
CLI_SEEDS_PER_RUN = 100_000
TRAIN_SEED_BASE = 1_000_000_000
TEST_SEED_BASE = 2_000_000_000
EXAMPLE_SEED_BASE = 3_000_000_000

# One MIDI tick is one millisecond: 500 ticks per quarter at 120 bpm.
TICKS_PER_QUARTER = 500
TICKS_PER_SECOND = 1000
GAP_SECONDS = 1.0  # silence between batched clips; longer than the reverb tail
RENDER_GAIN = 0.4


def find_soundfont() -> str:
    """Return the path of the General MIDI sound font used for rendering."""
    for name in ("FluidR3_GM.sf2", "default-GM.sf2"):
        path = Path("/usr/share/sounds/sf2") / name
        if path.exists():
            return str(path)
    raise FileNotFoundError("no General MIDI sound font in /usr/share/sounds/sf2")


def _vlq(value: int) -> bytes:
    """Encode a non-negative integer as a MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(events: list[tuple[int, int, bytes]]) -> bytes:
    """Build a format-0 Standard MIDI File.

    Parameters
    ----------
    events : list of (tick, order, message)
        Absolute tick, a tie-break rank (lower first at equal ticks, so that
        note-offs precede note-ons and controller resets precede notes) and the
        raw channel message.

    Returns
    -------
    bytes
        The complete file.
    """
    tempo = bytes([0xFF, 0x51, 0x03]) + (500_000).to_bytes(3, "big")
    track = _vlq(0) + tempo
    last = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        track += _vlq(tick - last) + message
        last = tick
    track += _vlq(0) + b"\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track


def melody_events(label: str, seconds: float, seed: int, start: int) -> list:
    """Draw one random melody and return its MIDI events.

    Parameters
    ----------
    label : str
        Instrument label, a key of ``INSTRUMENTS``.
    seconds : float
        Clip length; notes are cut at the end of the clip.
    seed : int
        Seed of the melody.
    start : int
        Tick at which the clip starts.

    Returns
    -------
    list of (tick, order, message)
    """
    program, low, high = INSTRUMENTS[label]
    rng = np.random.default_rng([seed, program])
    end = start + int(round(seconds * TICKS_PER_SECOND))
    # Reset the channel so a clip does not depend on the clip before it.
    events = [
        (start, 0, bytes([0xB0, 121, 0])),
        (start, 1, bytes([0xC0, program])),
        (start, 1, bytes([0xB0, 7, int(rng.integers(90, 128))])),
        (start, 1, bytes([0xB0, 91, int(rng.integers(0, 91))])),
        (start, 1, bytes([0xB0, 1, int(rng.integers(0, 41)) * int(rng.random() < 0.3)])),
    ]
    span = int(rng.integers(7, 20))
    lo = int(rng.integers(low, max(low, high - span) + 1))
    hi = min(high, lo + span)
    beat = rng.uniform(0.2, 0.7) * TICKS_PER_SECOND
    legato = rng.uniform(0.6, 1.0)
    base_velocity = rng.integers(50, 116)
    pitch = int(rng.integers(lo, hi + 1))
    tick = start + int(rng.integers(0, 150))  # random onset of the first note
    while tick < end:
        length = int(beat * rng.choice([0.5, 1.0, 1.5, 2.0, 3.0], p=[0.3, 0.35, 0.1, 0.15, 0.1]))
        length = max(length, 60)
        if rng.random() > 0.1 or tick == start:  # otherwise a rest
            velocity = int(np.clip(base_velocity + rng.integers(-15, 16), 20, 127))
            off = min(tick + max(int(length * legato), 40), end)
            chord = [pitch]
            if rng.random() < 0.15:  # occasional dyad, for every instrument alike
                chord.append(int(np.clip(pitch + rng.choice([3, 4, 5, 7, 12]), lo, hi + 12)))
            for note in set(chord):
                events.append((tick, 2, bytes([0x90, note, velocity])))
                events.append((off, 0, bytes([0x80, note, 0])))
        tick += length
        pitch = int(np.clip(pitch + rng.integers(-5, 6), lo, hi))
    events.append((end, 1, bytes([0xB0, 120, 0])))  # all sound off at the clip end
    return events


def _segment_level(seed: int, label: str) -> float:
    """Return the random peak level (linear) of a rendered clip."""
    rng = np.random.default_rng([seed, INSTRUMENTS[label][0], 7])
    return float(10 ** (rng.uniform(-6.0, -1.0) / 20))


def render_clips(label: str, seconds: float, seeds: list[int]) -> np.ndarray:
    """Render several clips of one instrument in one FluidSynth call.

    Parameters
    ----------
    label : str
        Instrument label, a key of ``INSTRUMENTS``.
    seconds : float
        Length of every clip.
    seeds : list of int
        One seed per clip.

    Returns
    -------
    numpy.ndarray
        float32 array of shape ``(len(seeds), round(seconds * 16000))``, each
        clip peak-normalised to a random level between -6 and -1 dBFS.
    """
    if label not in INSTRUMENTS:
        raise ValueError(f"unknown label {label!r}; expected one of {LABELS}")
    if shutil.which("fluidsynth") is None:
        raise RuntimeError("the fluidsynth program is not installed")
    stride = int(round((seconds + GAP_SECONDS) * TICKS_PER_SECOND))
    # Clip k starts at (k + 1) * stride: a lead-in gap keeps the first clip off tick 0,
    # which FluidSynth handles slightly differently from later ticks.
    events = []
    for k, seed in enumerate(seeds):
        events += melody_events(label, seconds, seed, (k + 1) * stride)
    with tempfile.TemporaryDirectory(prefix="freqrex_render_") as tmp:
        mid = Path(tmp) / "in.mid"
        wav = Path(tmp) / "out.wav"
        mid.write_bytes(midi_bytes(events))
        command = [
            "fluidsynth", "-q", "-ni", "-C", "0", "-g", str(RENDER_GAIN),
            "-O", "float", "-T", "wav", "-F", str(wav), "-r", str(SAMPLE_RATE),
            find_soundfont(), str(mid),
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, env=_quiet_env())
        audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz instead of {SAMPLE_RATE} Hz")
    audio = audio.mean(axis=1)
    n = int(round(seconds * SAMPLE_RATE))
    hop = stride * SAMPLE_RATE // TICKS_PER_SECOND
    audio = np.pad(audio, (0, max(0, len(seeds) * hop + n - len(audio))))
    clips = np.stack([audio[(k + 1) * hop : (k + 1) * hop + n] for k in range(len(seeds))])
    for clip, seed in zip(clips, seeds, strict=True):
        peak = float(np.abs(clip).max())
        if peak > 0:
            clip *= _segment_level(seed, label) / peak
    return clips.astype(np.float32)


def _quiet_env() -> dict:
    """Environment that keeps FluidSynth from probing sound cards."""
    env = dict(os.environ)
    env.setdefault("ALSA_CONFIG_PATH", "/dev/null")
    return env


def render_clip(label: str, seconds: float, seed: int) -> np.ndarray:
    """Render one random melody of an instrument.

    Parameters
    ----------
    label : str
        Instrument label, one of ``LABELS``.
    seconds : float
        Clip length in seconds.
    seed : int
        Seed of the melody; the same (label, seconds, seed) gives the same clip.

    Returns
    -------
    numpy.ndarray
        float32 mono waveform at 16 kHz in [-1, 1].
    """
    return render_clips(label, seconds, [seed])[0]


def cli_seeds(seed: int, count: int) -> list[int]:
    """Return the clip seeds the CLI uses for run seed ``seed``."""
    if not 0 <= seed < TRAIN_SEED_BASE // CLI_SEEDS_PER_RUN:
        raise ValueError(f"--seed must be in [0, {TRAIN_SEED_BASE // CLI_SEEDS_PER_RUN})")
    if not 0 < count <= CLI_SEEDS_PER_RUN:
        raise ValueError(f"--per-class must be in [1, {CLI_SEEDS_PER_RUN}]")
    return [seed * CLI_SEEDS_PER_RUN + i for i in range(count)]


def write_dataset(out: Path, per_class: int, seconds: float, seed: int, labels=None) -> None:
    """Write ``out/<label>/<label>_<i>.wav`` clips (PCM_16, 16 kHz mono)."""
    seeds = cli_seeds(seed, per_class)
    for label in labels or LABELS:
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        for first in range(0, per_class, 50):
            clips = render_clips(label, seconds, seeds[first : first + 50])
            for i, clip in enumerate(clips, start=first):
                sf.write(str(folder / f"{label}_{i}.wav"), clip, SAMPLE_RATE, subtype="PCM_16")
        print(f"{label}: {per_class} clips -> {folder}")


def main(argv=None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--per-class", type=int, default=20, help="clips per instrument")
    parser.add_argument("--seconds", type=float, default=4.0, help="clip length in seconds")
    parser.add_argument("--seed", type=int, default=0, help="run seed (disjoint from training)")
    parser.add_argument("--labels", nargs="*", default=None, choices=LABELS)
    args = parser.parse_args(argv)
    write_dataset(args.out, args.per_class, args.seconds, args.seed, args.labels)


if __name__ == "__main__":
    main()
