"""`freqrex evaluate --compare`: the baselines of `freqrex compare` over a data set.

The band-energy oracle and the clips of tests/test_evaluate.py, with small settings.
"""

from __future__ import annotations

import csv
import sqlite3
import sys

import numpy as np
import pytest
from oracles import BANDS, band_energy_model, write_clips
from oracles import EVALUATE_FAST as FAST
from oracles import invoke_cli as invoke

import freqrex
from freqrex.comparison import RANKINGS
from freqrex.config import AttackConfig
from freqrex.criterion import KINDS
from freqrex.errors import InputError
from freqrex.evaluation import Store, evaluate, summarize, to_markdown
from freqrex.evaluation.store import BASELINE_FIELDS, SCHEMA_VERSION
from freqrex.output.evaluation import write_csv

KS = (1, 5)
DOMAINS = ("fft", "stft")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return band_energy_model(tmp_path_factory.mktemp("model") / "bands.onnx", BANDS)


def run(model, data, db, **kw):
    return evaluate(model, data, db, workers=0, **{"attack": AttackConfig(ks=KS, domains=DOMAINS),
                                                    **FAST, **kw})


@pytest.fixture(scope="module")
def compared(model, tmp_path_factory):
    """A serial run with ``compare`` on 2 clips and an unreadable file, both domains."""
    data = write_clips(tmp_path_factory.mktemp("data"), range(2))
    (data / "broken.wav").write_bytes(b"not audio")
    records = []
    ev = run(model, data, data.parent / "cmp.sqlite", compare=True, on_clip=records.append)
    with Store(ev.db) as store:
        rows = store.baselines()
    return ev, data, rows, records


def test_one_row_per_clip_domain_and_ranking_and_none_for_an_error(compared):
    ev, _, rows, records = compared
    assert ev.errors == 1 and ev.summary.ok == 2
    ok = sorted(r.clip for r in records if r.status == "ok")
    assert sorted((b["clip"], b["domain"], b["ranking"]) for b in rows) == sorted(
        (c, d, name) for c in ok for d in DOMAINS for name in RANKINGS)
    assert not [b for b in rows if b["clip"] == "broken.wav"]
    assert set(rows[0]) == set(BASELINE_FIELDS)


def test_the_rows_equal_an_independent_compare_of_the_clip(compared, model):
    _, data, rows, _ = compared
    for clip in sorted({b["clip"] for b in rows}):
        for domain in DOMAINS:
            c = freqrex.compare(str(model), data / clip, domain=domain, **FAST)
            for r in c.rankings:
                (b,) = [b for b in rows if (b["clip"], b["domain"], b["ranking"]) ==
                        (clip, domain, r.name)]
                assert b["n_features"] == c.n_features
                assert (b["mutants"], b["waveforms"]) == (r.mutants, r.waveforms)
                assert (b["deletion_area"], b["insertion_area"]) == (
                    r.deletion_area, r.insertion_area)
                for kind in KINDS:
                    size = r.sizes[kind]
                    assert b[f"{kind}_size"] == size
                    assert b[f"{kind}_proven"] == r.proven[kind]
                    assert b[f"{kind}_share"] == (None if size is None else size / c.n_features)
    # the oracle's decision rests on a band: responsibility finds it, in every clip
    assert all(b["sufficient_size"] is not None for b in rows if b["ranking"] == "responsibility")


def test_the_explanations_search_is_reused_not_run_again(model, tmp_path, monkeypatch):
    def no_search(*args, **kwargs):
        raise AssertionError("compare ran its own search")

    monkeypatch.setattr(sys.modules["freqrex.comparison"], "explain", no_search)
    data = write_clips(tmp_path / "data", [0])
    ev = run(model, data, tmp_path / "r.sqlite", compare=True,
             attack=AttackConfig(ks=KS, domains=("fft",)))
    assert (ev.processed, ev.errors) == (1, 0)
    with Store(ev.db) as store:
        (clip,), rows = store.clips(), store.baselines()
    assert len(rows) == len(RANKINGS)
    (resp,) = [b for b in rows if b["ranking"] == "responsibility"]
    # responsibility's ranking cost the explanation's search; the comparison only scores it
    assert 0 < resp["mutants"] <= FAST["search_limit"]
    assert {b["ranking"] for b in rows if b["mutants"] == 0} == {"magnitude", "random"}
    assert clip["fft_model_calls"] > 0


def test_the_table_is_recomputed_from_the_rows(compared, tmp_path):
    ev, _, rows, _ = compared
    s = summarize(ev.db)
    assert [(r.domain, r.ranking) for r in s.rankings] == [
        (d, name) for d in DOMAINS for name in ("responsibility", *sorted(RANKINGS[1:]))]
    for r in s.rankings:
        mine = [b for b in rows if (b["domain"], b["ranking"]) == (r.domain, r.ranking)]
        assert r.clips == len(mine) == 2
        for kind in KINDS:
            found = [b for b in mine if b[f"{kind}_size"] is not None]
            assert r.found[kind] == len(found)
            if found:
                assert r.size[kind] == pytest.approx(np.median([b[f"{kind}_size"]
                                                                for b in found]))
                assert r.share[kind] == pytest.approx(np.median([b[f"{kind}_share"]
                                                                 for b in found]))
            else:
                assert r.size[kind] is None and r.share[kind] is None
        assert r.deletion_area == pytest.approx(np.median([b["deletion_area"] for b in mine]))
        assert r.insertion_area == pytest.approx(np.median([b["insertion_area"] for b in mine]))
        # smallest sufficient prefix among the clip's rankings, ties counted for each
        wins = contested = 0
        for b in mine:
            sizes = [o["sufficient_size"] for o in rows if (o["clip"], o["domain"]) ==
                     (b["clip"], b["domain"]) and o["sufficient_size"] is not None]
            if sizes:
                contested += 1
                wins += b["sufficient_size"] == min(sizes)
        assert (r.smallest, r.contested) == (wins, contested)
    text = to_markdown(s)
    assert "## Rankings compared (`--compare`)" in text
    resp = next(r for r in s.rankings if (r.domain, r.ranking) == ("fft", "responsibility"))
    assert f"| fft | responsibility | {resp.cells()[0]} |" in text
    assert "rankings compared" in str(s)
    with open(write_csv(s, tmp_path / "t.csv")) as f:
        found = {(row["domain"], row["metric"]): row for row in csv.DictReader(f)}
    row = found[("fft", "ranking_responsibility_sufficient_size_median")]
    assert float(row["value"]) == resp.size["sufficient"] and int(row["n"]) == 2


def test_a_ties_and_not_found_table():
    from freqrex.evaluation.baselines_report import ranking_rows

    def row(clip, ranking, size):
        return {"clip": clip, "domain": "fft", "ranking": ranking, "deletion_area": 0.5,
                "insertion_area": 0.25,
                **{f"{k}_size": size for k in KINDS}, **{f"{k}_share": size and size / 10
                                                         for k in KINDS}}

    rows = [row("a", "responsibility", 3), row("a", "random", 3),     # a tie: both win
            row("b", "responsibility", None), row("b", "random", 7),  # random wins
            row("c", "responsibility", None), row("c", "random", None)]  # nobody: not counted
    resp, rand = ranking_rows(rows, ["fft"])
    assert (resp.smallest, resp.contested, rand.smallest, rand.contested) == (1, 2, 2, 2)
    assert resp.found["sufficient"] == 1 and resp.size["sufficient"] == 3
    assert resp.cells()[0] == "3 (30%), found 1/3" and resp.cells()[-1] == "50% (1/2)"
    assert ranking_rows([], ["fft"]) == []


def test_without_compare_no_rows_no_table_and_a_resume_must_agree(model, tmp_path):
    data, db = write_clips(tmp_path / "data", [0]), tmp_path / "n.sqlite"
    fft = AttackConfig(ks=KS, domains=("fft",))
    ev = run(model, data, db, attack=fft)
    with Store(db) as store:
        assert store.baselines() == []
        assert store.run()["settings"]["compare"] is False
    assert ev.summary.rankings == [] and "Rankings compared" not in to_markdown(ev.summary)
    with pytest.raises(InputError, match=r"different settings \(compare False -> True\)"):
        run(model, data, db, attack=fft, compare=True)
    # the same value resumes: a new clip is evaluated, the old one skipped
    write_clips(data, [1])
    assert run(model, data, db, attack=fft).processed == 1


def test_resuming_a_compare_run_skips_done_clips_and_retries_bugs(model, tmp_path,
                                                                  monkeypatch):
    data, db = write_clips(tmp_path / "data", range(2)), tmp_path / "b.sqlite"
    fft = AttackConfig(ks=KS, domains=("fft",))

    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(sys.modules["freqrex.evaluation.task"], "compare_records", bug)
    assert run(model, data, db, attack=fft, compare=True).errors == 2
    monkeypatch.undo()
    again = run(model, data, db, attack=fft, compare=True)
    assert (again.processed, again.errors) == (2, 0)
    write_clips(data, [2])
    third = run(model, data, db, attack=fft, compare=True)
    assert (third.processed, third.skipped) == (1, 2)
    with Store(db) as store:
        rows = store.baselines()
    assert len(rows) == 3 * len(RANKINGS)
    with pytest.raises(InputError, match=r"compare True -> False"):
        run(model, data, db, attack=fft)


def test_an_older_database_gets_the_version_error(tmp_path):
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as conn:
        for table in ("runs", "clips", "attacks"):
            conn.execute(f"CREATE TABLE {table} (x)")
        conn.execute("PRAGMA user_version = 3")
    assert SCHEMA_VERSION == 4
    with pytest.raises(InputError, match=r"holds results of an older freqrex \(results schema "
                                         r"3; this one reads schema 4"):
        Store(db, settings={"seed": 0})


def test_the_cli_prints_the_table(model, tmp_path):
    data = write_clips(tmp_path / "data", [0])
    report = tmp_path / "out" / "report.md"
    code, stdout, stderr = invoke(
        "evaluate", data, "--db", tmp_path / "c.sqlite", "--onnx", model, "--workers", "0",
        "--ks", "1,5", "--domains", "fft", "--iterations", "2", "--search-limit", "150",
        "--seed", "1", "--compare", "--report", report, "--quiet")
    assert code == 0, stderr
    main, _, rest = stdout.partition("rankings compared")
    assert "flip rate at k = 1" in main and rest
    assert all(name in rest for name in RANKINGS)
    assert "Rankings compared" in report.read_text()
    page = (report.parent / "report.html").read_text()   # the page has the table too
    assert "<h2>Rankings compared</h2>" in page and "<td>random_mask</td>" in page
