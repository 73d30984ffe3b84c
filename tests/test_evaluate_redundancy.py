"""The evaluation's redundancy columns and its "redundancy vs flip rate" table."""

from __future__ import annotations

import csv

import pytest
from oracles import BANDS, band_energy_model, write_clips
from oracles import EVALUATE_FAST as FAST

import freqrex
from freqrex.config import AttackConfig
from freqrex.evaluation import Store, evaluate, summarize, to_markdown
from freqrex.evaluation.redundancy import group_of, redundancy_markdown, redundancy_rows
from freqrex.output.evaluation import write_csv
from freqrex.output.html import evaluation_page

KS = (1, 5)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return band_energy_model(tmp_path_factory.mktemp("model") / "bands.onnx", BANDS)


@pytest.fixture(scope="module")
def redundant(model, tmp_path_factory):
    """A serial fft-only run on 3 clips with ``multiple=3``, and each stored record."""
    data = write_clips(tmp_path_factory.mktemp("data"), range(3))
    records = []
    ev = evaluate(model, data, data.parent / "multi.sqlite", workers=0, multiple=3,
                  attack=AttackConfig(ks=KS, domains=("fft",)), on_clip=records.append,
                  **FAST)
    return ev, data, records


def test_the_redundancy_columns_hold_each_clips_sets(redundant, model):
    ev, data, records = redundant
    with Store(ev.db) as store:
        rows = {c["clip"]: c for c in store.clips()}
    assert len(records) == len(rows) == 3
    for record in records:
        d, row = record.domains["fft"], rows[record.clip]
        assert d.disjoint_sets is not None and 1 <= d.disjoint_sets <= 3
        assert (row["fft_disjoint_sets"], row["fft_union_share"], row["fft_union_energy"]) == (
            d.disjoint_sets, d.union_share, d.union_energy)
        assert row["stft_disjoint_sets"] is None   # not evaluated
    # the same clip explained on its own (same seed): the same redundancy
    clip = records[0].clip
    result = freqrex.explain(str(model), data / clip, domain="fft", multiple=3, **FAST)
    red = result.redundancy
    assert (red["sets"], red["union_share_features"], red["union_share_energy"]) == pytest.approx(
        (rows[clip]["fft_disjoint_sets"], rows[clip]["fft_union_share"],
         rows[clip]["fft_union_energy"]))


def test_the_table_counts_what_the_rows_say(redundant, tmp_path):
    ev, _, _ = redundant
    with Store(ev.db) as store:
        clips = [c for c in store.clips() if c["status"] == "ok"]
        attacks = store.attacks()
    summary = summarize(ev.db)
    assert summary.redundancy_ks == list(KS)
    got = {(r.group, r.mode): r for r in summary.redundancy}
    groups = {group_of(c["fft_disjoint_sets"]) for c in clips}
    modes = {str(a.get("mode", "remove")) for a in attacks}
    assert set(got) == {(g, m) for g in groups for m in modes}
    for (group, mode), r in got.items():
        members = {c["clip"] for c in clips if group_of(c["fft_disjoint_sets"]) == group}
        assert r.domain == "fft" and r.clips == len(members)
        for k in KS:
            flipped = {a["clip"] for a in attacks if a["k"] == k and a["flipped"]
                       and a["clip"] in members and str(a.get("mode", "remove")) == mode}
            assert r.flipped[k] == len(flipped)
            assert r.cell(k) == f"{100 * len(flipped) / len(members):.0f}% ({len(flipped)}/" \
                                f"{len(members)})"
    # the Markdown section, the CSV rows, the page, the terminal text
    text = to_markdown(summary)
    assert "## Redundancy and flip rate" in text
    for r in summary.redundancy:
        assert f"| fft | {r.mode} | {r.group} | {r.clips} | {r.cell(1)} | {r.cell(5)} |" in text
    with open(write_csv(summary, tmp_path / "r.csv")) as f:
        rows = {(row["domain"], row["metric"]): row for row in csv.DictReader(f)}
    for r in summary.redundancy:
        row = rows[("fft", f"sets_{r.group}_{r.mode}_flip_rate_k5")]
        assert float(row["value"]) == r.rate(5) and int(row["n"]) == r.clips
    page = evaluation_page(summary, [])
    assert "<h2>Redundancy and flip rate</h2>" in page and summary.redundancy[0].cell(1) in page
    assert "redundancy and flip rate" in str(summary)


def test_one_set_leaves_the_columns_empty_and_the_table_out(model, tmp_path):
    data = write_clips(tmp_path / "data", [0])
    ev = evaluate(model, data, tmp_path / "one.sqlite", workers=0,
                  attack=AttackConfig(ks=KS, domains=("fft",)), **FAST)
    with Store(ev.db) as store:
        (row,) = store.clips()
    assert (row["fft_disjoint_sets"], row["fft_union_share"], row["fft_union_energy"]) == (
        None, None, None)
    summary = summarize(ev.db)
    assert summary.redundancy == [] and "Redundancy" not in to_markdown(summary)
    assert "Redundancy" not in evaluation_page(summary, [])


def _clip(name: str, sets: int | None) -> dict:
    return {"clip": name, "fft_disjoint_sets": sets, "stft_disjoint_sets": None}


def _attack(clip: str, k: int, flipped: bool, **mode: str) -> dict:
    return {"clip": clip, "domain": "fft", "k": k, "flipped": int(flipped), **mode}


@pytest.mark.parametrize("with_mode", [False, True])
def test_groups_and_rates_with_or_without_a_mode_column(with_mode):
    # five clips: 0 sets (no verified set), 1, 2, 3 and 5 sets (3 and 5 share "3+")
    ok = [_clip("a", 1), _clip("b", 2), _clip("c", 3), _clip("d", 5), _clip("e", 0)]
    modes = ("remove", "gain") if with_mode else ("",)
    attacks = []
    for mode in modes:
        tag = {"mode": mode} if with_mode else {}
        # "remove" flips the fragile clip a at k = 1 and d at 5; "gain" flips c at both
        flips = {"remove": {("a", 1), ("a", 5), ("d", 5)}, "gain": {("c", 1), ("c", 5)},
                 "": {("a", 1), ("a", 5), ("d", 5)}}[mode]
        attacks += [_attack(c["clip"], k, (c["clip"], k) in flips, **tag)
                    for c in ok for k in KS]
    rows = redundancy_rows(ok, attacks, ["fft", "stft"], KS, default_mode="remove")
    table = {(r.mode, r.group): (r.clips, r.flipped[1], r.flipped[5]) for r in rows}
    remove = {("remove", "0"): (1, 0, 0), ("remove", "1"): (1, 1, 1),
              ("remove", "2"): (1, 0, 0), ("remove", "3+"): (2, 0, 1)}
    if with_mode:
        remove |= {("gain", "0"): (1, 0, 0), ("gain", "1"): (1, 0, 0), ("gain", "2"): (1, 0, 0),
                   ("gain", "3+"): (2, 1, 1)}
    assert table == remove
    assert [r.group for r in rows if r.mode == "remove"] == ["0", "1", "2", "3+"]
    assert all(r.domain == "fft" for r in rows)   # no stft counts: no stft rows
    three = next(r for r in rows if (r.mode, r.group) == ("remove", "3+"))
    assert three.rate(5) == 0.5 and three.cell(5) == "50% (1/2)" and three.rate(20) is None
    lines = redundancy_markdown(rows, KS)
    assert lines[0] == "## Redundancy and flip rate" and "| fft | remove | 3+ | 2 | 0% (0/2) | " \
        "50% (1/2) |" in lines


def test_no_counts_no_rows():
    assert redundancy_rows([_clip("a", None)], [], ["fft"], KS) == []
    assert redundancy_markdown([], KS) == []


def test_the_command_prints_the_redundancy_table(redundant, model):
    # resumes the finished run (nothing left to evaluate) and prints its tables
    from typer.testing import CliRunner

    from freqrex.cli import app

    ev, data, _ = redundant
    args = ["evaluate", str(data), "--db", str(ev.db), "--onnx", str(model), "--workers", "0",
            "--multiple", "3", "--ks", ",".join(map(str, KS)), "--domains", "fft", "--quiet",
            *[f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "disjoint" in out.output and "flip rate at k" in out.output
