"""Rankings compared over a data set: is responsibility better than cheap rankings?

With ``evaluate --compare`` every clip has, per domain, one ``baselines`` row per ranking
(:class:`~freqrex.evaluation.task.BaselineRecord`, the numbers of :func:`freqrex.compare`).
The table gives per domain and ranking (responsibility first) the median smallest
sufficient / necessary / complete prefix (in features and as a share of them; over the
clips where it was found), the median deletion and insertion areas (over every clip), and
how often the ranking's sufficient prefix was the smallest of the clip's rankings (ties
count for each tied ranking; over the clips where some ranking found one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from freqrex.criterion import KINDS

__all__ = ["RankingRow", "ranking_rows", "rankings_markdown", "rankings_rich_table"]

TITLE = "rankings compared"


@dataclass(frozen=True)
class RankingRow:
    """One ranking in one domain, over the clips compared.

    ``size[kind]`` and ``share[kind]`` are medians over the ``found[kind]`` clips where the
    prefix was found (None when none); ``smallest`` of ``contested`` clips had this
    ranking's sufficient prefix the smallest.
    """

    domain: str
    ranking: str
    clips: int
    size: dict[str, float | None] = field(default_factory=dict)
    share: dict[str, float | None] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    deletion_area: float | None = None
    insertion_area: float | None = None
    smallest: int = 0
    contested: int = 0

    @property
    def smallest_rate(self) -> float | None:
        """Share of the contested clips where this ranking's sufficient prefix was smallest."""
        return self.smallest / self.contested if self.contested else None

    def cells(self) -> list[str]:
        """The row's cells after domain and ranking, as both tables write them."""
        sizes = [self._size(kind) for kind in KINDS]
        rate = self.smallest_rate
        won = "-" if rate is None else f"{100 * rate:.0f}% ({self.smallest}/{self.contested})"
        return [*sizes, _num(self.deletion_area), _num(self.insertion_area), won]

    def _size(self, kind: str) -> str:
        size, share, found = self.size.get(kind), self.share.get(kind), self.found.get(kind, 0)
        if size is None or share is None:
            return f"not found (0/{self.clips})"
        text = f"{size:g} ({100 * share:.3g}%)"
        return text + (f", found {found}/{self.clips}" if found < self.clips else "")


NOTE = ("Smallest sufficient / necessary / complete prefix of each ranking (the same "
        "search and budget for all), the areas of its deletion (low: good) and insertion "
        "(high: good) curves, and how often its sufficient prefix was the smallest of the "
        "clip's rankings (ties count for each).")
HEADERS = ["domain", "ranking", *(f"{kind}: median (% of features)" for kind in KINDS),
           "deletion area, median", "insertion area, median", "sufficient smallest"]


def ranking_rows(baselines: list[dict[str, Any]], domains: Sequence[str]) -> list[RankingRow]:
    """The table's rows from the store's ``baselines`` rows (empty without ``--compare``).

    Parameters
    ----------
    baselines : list of dict
        :meth:`freqrex.evaluation.Store.baselines`.
    domains : sequence of str
        The domains evaluated, in the table's order.
    """
    rows = []
    for domain in domains:
        mine = [b for b in baselines if b["domain"] == domain]
        best = _smallest_per_clip(mine)
        # responsibility, the ranking on trial, first; the baselines by name
        names = sorted({b["ranking"] for b in mine}, key=lambda n: (n != "responsibility", n))
        for name in names:
            rows.append(_row(domain, name, [b for b in mine if b["ranking"] == name], best))
    return rows


def _smallest_per_clip(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Per clip, its rankings' smallest sufficient prefix (clips where none was found are
    absent)."""
    best: dict[str, int] = {}
    for b in rows:
        size = b["sufficient_size"]
        if size is not None:
            best[b["clip"]] = min(size, best.get(b["clip"], size))
    return best


def _row(domain: str, name: str, rows: list[dict[str, Any]], best: dict[str, int]) -> RankingRow:
    size, share, found = {}, {}, {}
    for kind in KINDS:
        hits = [b for b in rows if b[f"{kind}_size"] is not None]
        found[kind] = len(hits)
        size[kind] = _median([b[f"{kind}_size"] for b in hits])
        share[kind] = _median([b[f"{kind}_share"] for b in hits])
    contested = [b for b in rows if b["clip"] in best]
    smallest = sum(b["sufficient_size"] == best[b["clip"]] for b in contested)
    return RankingRow(domain=domain, ranking=name, clips=len(rows), size=size, share=share,
                      found=found, deletion_area=_median([b["deletion_area"] for b in rows]),
                      insertion_area=_median([b["insertion_area"] for b in rows]),
                      smallest=smallest, contested=len(contested))


def _median(values: list[Any]) -> float | None:
    return float(np.median(np.asarray(values, dtype=np.float64))) if values else None


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def rankings_markdown(rows: list[RankingRow]) -> list[str]:
    """The table's Markdown lines, with its heading and what it means."""
    lines = [f"## {TITLE.capitalize()} (`--compare`)", "", NOTE, "",
             "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += [f"| {r.domain} | {r.ranking} | " + " | ".join(r.cells()) + " |" for r in rows]
    return lines


def rankings_rich_table(rows: list[RankingRow]) -> Any:
    """The table for the terminal (a :class:`rich.table.Table`); None without rows."""
    if not rows:
        return None
    from rich.table import Table

    table = Table(title=TITLE)
    for i, header in enumerate(HEADERS):
        table.add_column(header, no_wrap=i < 2)   # the names whole; the numbers may wrap
    for r in rows:
        table.add_row(r.domain, r.ranking, *r.cells())
    return table
