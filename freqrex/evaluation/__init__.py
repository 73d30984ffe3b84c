"""Data-set evaluation: explain and attack every clip under a folder, resumably, in parallel.

- :mod:`~freqrex.evaluation.task`: one clip -> :class:`ClipRecord` (:func:`evaluate_clip`,
  the pure per-clip task that Dask ships to its workers)
- :mod:`~freqrex.evaluation.dispatch`: :func:`evaluate` (serial or Dask, resumable) and
  :func:`find_clips`
- :mod:`~freqrex.evaluation.store`: the SQLite results database (:class:`Store`)
- :mod:`~freqrex.evaluation.report`: the paper-style table (:func:`summarize`,
  :func:`to_markdown`, :func:`rich_table`); :mod:`freqrex.output.evaluation` writes it;
  :mod:`~freqrex.evaluation.baselines_report`: ``--compare``'s "rankings compared" table

>>> run = evaluate("model.onnx", "clips/", "results.sqlite", workers=2)  # doctest: +SKIP
>>> print(to_markdown(run.summary))  # doctest: +SKIP
"""

from freqrex.evaluation.baselines_report import RankingRow
from freqrex.evaluation.dispatch import AUDIO_EXTENSIONS, Evaluation, evaluate, find_clips
from freqrex.evaluation.report import (
    PAPER,
    PAPER_NOTE,
    UNITS,
    Metric,
    Summary,
    rich_table,
    summarize,
    to_markdown,
)
from freqrex.evaluation.store import SCHEMA_VERSION, Store
from freqrex.evaluation.task import (
    AttackRecord,
    BaselineRecord,
    ClipRecord,
    DomainRecord,
    Job,
    ModelSpec,
    SetRecord,
    cached_model,
    error_record,
    evaluate_clip,
    open_model,
    worker_state,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "PAPER",
    "PAPER_NOTE",
    "SCHEMA_VERSION",
    "UNITS",
    "AttackRecord",
    "BaselineRecord",
    "ClipRecord",
    "DomainRecord",
    "Evaluation",
    "Job",
    "Metric",
    "ModelSpec",
    "RankingRow",
    "SetRecord",
    "Store",
    "Summary",
    "cached_model",
    "error_record",
    "evaluate",
    "evaluate_clip",
    "find_clips",
    "open_model",
    "rich_table",
    "summarize",
    "to_markdown",
    "worker_state",
]
