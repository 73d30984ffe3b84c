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
from freqrex.errors import OutputError
from freqrex.output.folders import writing_folder

if TYPE_CHECKING:  # types only: results are data and know nothing of output
    from freqrex.config import AttackConfig
    from freqrex.explanation import Result
    from freqrex.manipulation import AttackResult


_DPI = 110


def to_json(document: dict[str, Any], indent: int | None = 2) -> str:
    """A document as strict JSON: a NaN or infinity is an error, never ``Infinity``."""
    return json.dumps(document, indent=indent, allow_nan=False)


# Files that mark a folder as freqrex's own: only such a folder is replaced by a new run.
_OURS = ("explanation.json", "report.html", "attack.json", "fft/attack.json",
         "stft/attack.json")


def check_replaceable(out_dir: str | os.PathLike) -> bool:
    """Whether writing ``out_dir`` will replace an earlier freqrex result there.

    Check before long work: a missing or empty folder is simply written (False); an earlier
    freqrex folder is replaced as a whole (True, so the caller can say so); any other
    non-empty folder is refused, since replacing it would delete the user's files.

    Raises
    ------
    OutputError
        For a non-empty folder that freqrex did not write.
    """
    out = Path(out_dir)
    if not out.is_dir() or not any(out.iterdir()):
        return False
    if any((out / name).is_file() for name in _OURS):
        return True
    raise OutputError(f"output folder {out} exists and holds files freqrex did not write; "
                      "choose another folder or empty it (a freqrex result folder is "
                      "replaced as a whole)")


def save_result(result: Result, out_dir: str | os.PathLike, figure: bool = True) -> Path:
    """Write an explanation into ``out_dir`` (made, or replaced as a whole).

    Files: ``explanation.json``, ``responsibility.npy``, ``original.wav``, ``<kind>.wav`` for
    each explanation found and ``without_necessary.wav`` (the clip minus the necessary set;
    all 32-bit float), ``explanation.png`` when ``figure`` is set, and ``report.html``, a
    page to listen to them with what the model says of each.
    """
    with writing_folder(out_dir) as tmp:
        _write_result(result, tmp, figure)
    return Path(out_dir)


def save_attack(result: AttackResult, out_dir: str | os.PathLike,
                explained: Result | None = None, settings: AttackConfig | None = None) -> Path:
    """Write ``attack.json`` and each flipping clip as ``<domain>_k<k>.wav`` (float32);
    with the explanation the attack used, also the clip, its prediction and every setting in
    ``attack.json``, ``original.wav``, ``attack.png`` and ``report.html``.
    """
    with writing_folder(out_dir) as tmp:
        _write_attack(result, tmp, explained, settings)
        if explained is not None:
            _attack_extras({result.domain: result}, {result.domain: explained}, tmp, "")
    return Path(out_dir)


def save_attacks(results: dict[str, AttackResult], out_dir: str | os.PathLike,
                 explained: dict[str, Result] | None = None,
                 settings: AttackConfig | None = None) -> Path:
    """One folder, written whole: a subfolder per domain with attack.json, the WAVs and
    ``attack.png``; ``original.wav`` and ``report.html`` at the top.
    """
    explained = explained or {}
    with writing_folder(out_dir) as tmp:
        for name, result in results.items():
            (tmp / name).mkdir()
            _write_attack(result, tmp / name, explained.get(name), settings)
        if explained:
            _attack_extras(results, explained, tmp, "{domain}/")
    return Path(out_dir)


def _attack_extras(results: dict[str, AttackResult], explained: dict[str, Result],
                   folder: Path, sub: str) -> None:
    """``original.wav``, an ``attack.png`` per domain and ``report.html`` for attacks."""
    from freqrex.output.figures import plot_attack
    from freqrex.output.html import attack_page

    first = next(iter(explained.values()))
    write_wav(folder / "original.wav", first.audio, first.sample_rate)
    files, figures = {"original": "original.wav"}, {}
    for name, result in results.items():
        where = sub.format(domain=name)
        figures[name] = f"{where}attack.png"
        plot_attack(result, explained.get(name)).savefig(folder / figures[name], dpi=_DPI)
        for step in result.steps:
            if step.flipped:
                files[f"{name}_k{step.k}"] = f"{where}{result.domain}_k{step.k}.wav"
    (folder / "report.html").write_text(attack_page(results, explained, files, figures))


def _write_result(result: Result, folder: Path, figure: bool) -> None:
    from freqrex.output.html import result_page

    (folder / "explanation.json").write_text(to_json(result.to_dict()))
    np.save(folder / "responsibility.npy", result.responsibility, allow_pickle=False)
    files = {"original": "original.wav"}
    write_wav(folder / "original.wav", result.audio, result.sample_rate)
    for kind, e in result.explanations.items():
        if e.found and e.audio is not None:
            write_wav(folder / f"{kind}.wav", e.audio, result.sample_rate)
            files[kind] = f"{kind}.wav"
    for i, extra in enumerate(result.explanations_multi[1:], start=2):  # --multiple M
        if extra.found and extra.audio is not None:
            write_wav(folder / f"sufficient_{i}.wav", extra.audio, result.sample_rate)
            files[f"sufficient_{i}"] = f"sufficient_{i}.wav"
    e = result.necessary
    if e.found and e.audio is not None:
        write_wav(folder / "without_necessary.wav", result.domain.remove(e.audio),
                  result.sample_rate)
        files["without_necessary"] = "without_necessary.wav"
    if figure:
        from freqrex.output.figures import plot_result  # matplotlib only when drawing

        plot_result(result).savefig(folder / "explanation.png", dpi=_DPI)
    page = result_page(result, files, "explanation.png" if figure else None)
    (folder / "report.html").write_text(page)


def attack_document(result: AttackResult, explained: Result | None = None,
                    settings: AttackConfig | None = None) -> dict[str, Any]:
    """``attack.json``: the attack, and with the explanation it used, the clip, the model,
    the original prediction and every setting (explanation and attack).
    """
    doc = result.to_dict()
    if explained is not None:
        n = int(explained.audio.shape[0])
        doc.update(source=explained.source,
                   clip={"sample_rate": explained.sample_rate, "n_samples": n,
                         "seconds": n / explained.sample_rate},
                   model=explained.model_info,
                   prediction=explained.prediction.to_dict(),
                   target={"index": explained.target, "label": explained.target_label,
                           "confidence": explained.confidence,
                           "is_top_class": explained.prediction.class_index
                           == explained.target},
                   config=explained.config.to_dict())
    if settings is not None:
        doc["attack_config"] = settings.to_dict()
    return doc


def _write_attack(result: AttackResult, folder: Path, explained: Result | None = None,
                  settings: AttackConfig | None = None) -> None:
    (folder / "attack.json").write_text(to_json(attack_document(result, explained, settings)))
    for step in result.steps:
        if step.flipped:
            write_wav(folder / f"{result.domain}_k{step.k}.wav", step.audio, result.sample_rate)


# -- compare ---------------------------------------------------------------------------------

if TYPE_CHECKING:
    from freqrex.comparison import Comparison


def save_comparison(comparison: Comparison, out_dir: str | os.PathLike,
                    figure: bool = True) -> Path:
    """Write ``compare.json`` and, when ``figure`` is set, ``compare.png`` (the curves)."""
    with writing_folder(out_dir) as tmp:
        (tmp / "compare.json").write_text(to_json(comparison.to_dict()))
        if figure:
            from freqrex.output.figures import plot_comparison

            plot_comparison(comparison).savefig(tmp / "compare.png", dpi=110)
    return Path(out_dir)


def write_evaluation_page(summary: Any, report: str | os.PathLike, note: str = "") -> Path:
    """``report.html`` next to the Markdown ``report``: the table and the figures beside it.

    Parameters
    ----------
    summary : Summary
        From :func:`freqrex.evaluation.summarize`.
    report : path
        The Markdown report; the page goes in its folder.
    note : str
        Where the paper's column comes from (``freqrex.evaluation.report.PAPER_NOTE``).

    Returns
    -------
    Path
        The page written.
    """
    from freqrex.output.html import evaluation_page

    folder = Path(report).parent
    folder.mkdir(parents=True, exist_ok=True)
    figures = [name for name in ("flip_rate.png", "sizes.png") if (folder / name).exists()]
    path = folder / "report.html"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(evaluation_page(summary, figures, note))
    os.replace(tmp, path)
    return path
