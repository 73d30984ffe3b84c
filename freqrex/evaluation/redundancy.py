"""Redundancy against flip rate: do clips with more disjoint sufficient sets resist attack?

With ``multiple > 1`` each clip records, per domain, how many disjoint sufficient sets the
search found within its budget (``<domain>_disjoint_sets``, :mod:`freqrex.multiple`). A
decision resting on one small set should be fragile, one with several disjoint sets robust.
The table groups the clips by that count (1, 2, 3+; 0 when no verified set was found) and
gives, per domain, attack mode and group, the share of the group's clips whose class the
attack flipped at k = 1 and k = 5.

The attack mode comes from each attack row's ``mode`` column where the store has one, else
from the run's settings: the code works with one mode per run or several.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GROUP_CAP", "RedundancyRow", "group_of", "redundancy_markdown", "redundancy_rows",
           "redundancy_rich_table", "run_mode", "table_ks"]

GROUP_CAP = 3
"""Clips with this many disjoint sets or more form one group (``"3+"``)."""


@dataclass(frozen=True)
class RedundancyRow:
    """One group of clips: how many, and how many of them each attack size flipped."""

    domain: str
    mode: str
    group: str                                  # "0", "1", "2" or "3+"
    clips: int
    flipped: dict[int, int] = field(default_factory=dict)   # k -> clips flipped at k

    def rate(self, k: int) -> float | None:
        """The share of the group's clips flipped at ``k`` (None: ``k`` not tried)."""
        if k not in self.flipped or not self.clips:
            return None
        return self.flipped[k] / self.clips

    def cell(self, k: int) -> str:
        """``"67% (2/3)"``, as the main table writes rates."""
        rate = self.rate(k)
        return "not run" if rate is None else f"{100 * rate:.0f}% ({self.flipped[k]}/{self.clips})"


def group_of(count: int) -> str:
    """The group of a clip with ``count`` disjoint sufficient sets."""
    return f"{GROUP_CAP}+" if count >= GROUP_CAP else str(count)


def table_ks(ks: Sequence[int]) -> list[int]:
    """The attack sizes of the table: 1 and 5 where tried, else the smallest and largest."""
    chosen = [k for k in (1, 5) if k in ks]
    return (chosen or sorted({min(ks), max(ks)})) if ks else []


def run_mode(settings: dict[str, Any]) -> str:
    """The run's attack mode(s) from its settings (``mode``, or a list ``modes``), for
    attack rows without a ``mode`` column."""
    mode = settings.get("mode", settings.get("modes", ""))
    return ",".join(map(str, mode)) if isinstance(mode, (list, tuple)) else str(mode)


def redundancy_rows(ok: list[dict[str, Any]], attacks: list[dict[str, Any]],
                    domains: Sequence[str], ks: Sequence[int],
                    default_mode: str = "") -> list[RedundancyRow]:
    """The table's rows, from the store's ``clips`` rows (status ok) and ``attacks`` rows.

    Parameters
    ----------
    ok : list of dict
        The clips explained without error.
    attacks : list of dict
        Every attack row (any domain).
    domains : sequence of str
        The domains evaluated.
    ks : sequence of int
        The attack sizes to report (see :func:`table_ks`).
    default_mode : str
        The attack mode of rows without a ``mode`` column.

    Returns
    -------
    list of RedundancyRow
        By domain, mode and group; empty when no clip has a count (``multiple == 1``).
    """
    rows = []
    for domain in domains:
        counts = {c["clip"]: c.get(f"{domain}_disjoint_sets") for c in ok}
        groups: dict[str, list[str]] = {}
        for clip, n in counts.items():
            if n is not None:
                groups.setdefault(group_of(int(n)), []).append(clip)
        if not groups:
            continue
        mine = [a for a in attacks if a["domain"] == domain and a["clip"] in counts]
        # in the run's order (its settings), then any other alphabetically
        order = default_mode.split(",")
        modes = sorted({_mode(a, default_mode) for a in mine}, key=lambda m: (
            order.index(m) if m in order else len(order), m)) or [default_mode]
        flipped = {(a["clip"], _mode(a, default_mode), a["k"]) for a in mine if a["flipped"]}
        for mode in modes:
            for group in sorted(groups, key=_group_rank):
                clips = groups[group]
                rows.append(RedundancyRow(domain, mode, group, len(clips), {
                    k: sum((c, mode, k) in flipped for c in clips) for k in ks}))
    return rows


def _mode(attack: dict[str, Any], default: str) -> str:
    return str(attack.get("mode") or default)


def _group_rank(group: str) -> int:
    return int(group.rstrip("+"))


_TITLE = "Redundancy and flip rate"
_NOTE = ("Clips grouped by the number of disjoint sufficient sets found (`--multiple`, within "
         "`multiple_budget`: a lower bound on the model's independent reasons, not a count of "
         "all of them); per group, the share of its clips whose class the attack flipped.")


def _head(ks: Sequence[int]) -> list[str]:
    return ["domain", "mode", "disjoint sets", "clips", *(f"flip rate at k = {k}" for k in ks)]


def _cells(row: RedundancyRow, ks: Sequence[int]) -> list[str]:
    return [row.domain, row.mode, row.group, str(row.clips), *(row.cell(k) for k in ks)]


def redundancy_markdown(rows: list[RedundancyRow], ks: Sequence[int]) -> list[str]:
    """The report's section (lines of Markdown); no lines when ``rows`` is empty."""
    if not rows:
        return []
    head = _head(ks)
    lines = [f"## {_TITLE}", "", _NOTE, "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cells(r, ks)) + " |" for r in rows]
    return lines


def redundancy_rich_table(rows: list[RedundancyRow], ks: Sequence[int]) -> Any:
    """The table for the terminal (a :class:`rich.table.Table`), or None without rows."""
    if not rows:
        return None
    from rich.table import Table

    table = Table(title=f"{_TITLE.lower()} (clips by disjoint sufficient sets found)")
    for name in _head(ks):
        table.add_column(name)
    for r in rows:
        table.add_row(*_cells(r, ks))
    return table
