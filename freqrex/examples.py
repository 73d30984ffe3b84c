"""The bundled reference model and example clips (see scripts/README.md for how they were made)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_DATA = files("freqrex") / "data"


def reference_model() -> Path:
    """Path of the bundled reference classifier (16 kHz raw waveform in, instrument out)."""
    return Path(str(_DATA / "reference.onnx"))


def example_clips() -> list[Path]:
    """Paths of the bundled example clips, one per class of the reference model."""
    folder = Path(str(_DATA / "examples"))
    return sorted(folder.glob("*.wav"))


def example_clip() -> Path:
    """The clip ``freqrex run`` explains when given none."""
    clips = example_clips()
    if not clips:
        raise FileNotFoundError("no bundled example clip; reinstall freqrex")
    return clips[0]
