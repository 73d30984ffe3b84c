"""The bundled reference model and example clips (see scripts/README.md for how they were made)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_DATA = files("freqrex") / "data"

#: Bundled models by name (what ``--onnx NAME`` means when NAME is not a file) -> file in data/.
#: ``musicnn-mtt``: musicnn's MTT_musicnn 50-tag music tagger (ISC licence, see
#: data/musicnn_LICENSE.md), exported by scripts/export_musicnn.py.
BUNDLED_MODELS = {"reference": "reference.onnx", "musicnn-mtt": "musicnn_mtt.onnx"}


def reference_model() -> Path:
    """Path of the bundled reference classifier (16 kHz raw waveform in, instrument out)."""
    return Path(str(_DATA / "reference.onnx"))


def bundled_model(name: str) -> Path | None:
    """Path of the bundled model called ``name`` (a key of :data:`BUNDLED_MODELS`).

    Parameters
    ----------
    name : str
        ``"reference"`` or ``"musicnn-mtt"``.

    Returns
    -------
    pathlib.Path or None
        The file, or None when ``name`` names no bundled model.

    Raises
    ------
    freqrex.errors.InputError
        When ``name`` is a bundled model whose file is missing from this installation.
    """
    if name not in BUNDLED_MODELS:
        return None
    path = Path(str(_DATA / BUNDLED_MODELS[name]))
    if not path.is_file():
        from freqrex.errors import InputError

        raise InputError(f"bundled model {name!r} is missing ({path}); rebuild it with "
                         "scripts/export_musicnn.py (see scripts/README.md)")
    return path


def example_clips() -> list[Path]:
    """Paths of the bundled example clips, one per class of the reference model."""
    folder = Path(str(_DATA / "examples"))
    return sorted(folder.glob("*.wav"))


def real_clip() -> Path:
    """A 10 s excerpt of a real recording ("Lava" by Kalsan, CC BY-SA 3.0; see
    data/real/LICENSE.md), for the bundled ``musicnn-mtt`` tagger."""
    return Path(str(_DATA / "real" / "lava_10s.flac"))


def long_clip() -> Path:
    """The bundled 30 s clip (480 000 samples at 16 kHz) the reference model classifies
    right: the benchmarks' long case."""
    return Path(str(_DATA / "examples" / "long_30s.flac"))


def example_clip() -> Path:
    """The clip ``freqrex run`` explains when given none."""
    clips = example_clips()
    if not clips:
        raise FileNotFoundError("no bundled example clip; reinstall freqrex")
    return clips[0]
