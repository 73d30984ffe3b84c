"""Results as folders: JSON documents, NumPy maps, WAV reconstructions and figures.

Every folder is written to a temporary sibling first and moved into place whole, so an
interrupted write leaves nothing half written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from freqrex.audio import write_wav
from freqrex.output.folders import writing_folder

if TYPE_CHECKING:  # types only: results are data and know nothing of output
    from freqrex.explanation import Result
    from freqrex.manipulation import AttackResult


def to_json(document: dict[str, Any], indent: int | None = 2) -> str:
    """A document as strict JSON: a NaN or infinity is an error, never ``Infinity``."""
    return json.dumps(document, indent=indent, allow_nan=False)


def save_result(result: Result, out_dir: str | os.PathLike, figure: bool = True) -> Path:
    """Write an explanation into ``out_dir`` (made, or replaced as a whole).

    Files: ``explanation.json``, ``responsibility.npy``, ``<kind>.wav`` for each
    explanation found (32-bit float), and ``explanation.png`` when ``figure`` is set.
    """
    with writing_folder(out_dir) as tmp:
        _write_result(result, tmp, figure)
    return Path(out_dir)


def save_attack(result: AttackResult, out_dir: str | os.PathLike) -> Path:
    """Write ``attack.json`` and each flipping clip as ``<domain>_k<k>.wav`` (float32)."""
    with writing_folder(out_dir) as tmp:
        _write_attack(result, tmp)
    return Path(out_dir)


def save_attacks(results: dict[str, AttackResult], out_dir: str | os.PathLike) -> Path:
    """One folder, written whole: a subfolder per domain with attack.json and the WAVs."""
    with writing_folder(out_dir) as tmp:
        for name, result in results.items():
            (tmp / name).mkdir()
            _write_attack(result, tmp / name)
    return Path(out_dir)


def _write_result(result: Result, folder: Path, figure: bool) -> None:
    (folder / "explanation.json").write_text(to_json(result.to_dict()))
    np.save(folder / "responsibility.npy", result.responsibility, allow_pickle=False)
    for kind, e in result.explanations.items():
        if e.found and e.audio is not None:
            write_wav(folder / f"{kind}.wav", e.audio, result.sample_rate)
    if figure:
        from freqrex.output.figures import plot_result  # matplotlib only when drawing

        plot_result(result).savefig(folder / "explanation.png", dpi=110)


def _write_attack(result: AttackResult, folder: Path) -> None:
    (folder / "attack.json").write_text(to_json(result.to_dict()))
    for step in result.steps:
        if step.flipped:
            write_wav(folder / f"{result.domain}_k{step.k}.wav", step.audio, result.sample_rate)
