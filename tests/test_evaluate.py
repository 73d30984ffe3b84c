"""`freqrex evaluate`: one row per clip and attack, resume after a real kill -9, and a real
Dask cluster giving the rows of a serial run.

Clips are 8192 samples of band-limited noise for the band-energy oracle, so the right class
of every clip is known: the band given the largest amplitude.
"""

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf
from oracles import (
    AMPLITUDES,
    BANDS,
    EVALUATE_FAST,
    EVALUATE_N,
    SR,
    band_energy_model,
    invoke_cli,
    make_clip,
    write_clips,
)

from freqrex import FreqrexError
from freqrex.config import AttackConfig, ModelConfig
from freqrex.criterion import KINDS
from freqrex.errors import InputError, OutputError
from freqrex.evaluation import (
    AttackRecord,
    ClipRecord,
    DomainRecord,
    SetRecord,
    Store,
    error_record,
    evaluate,
    find_clips,
    summarize,
    to_markdown,
    worker_state,
)
from freqrex.evaluation.store import ATTACK_FIELDS, CLIP_FIELDS
from freqrex.output.evaluation import flip_rate_figure, sizes_figure, write_report

N = EVALUATE_N
FAST = EVALUATE_FAST
invoke = invoke_cli
KS = (1, 5, 20)
TIMING = {"worker", "model_loads", "seconds", "seconds_model", "finished", "fft_seconds",
          "stft_seconds", "fft_seconds_model", "stft_seconds_model"}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return band_energy_model(tmp_path_factory.mktemp("model") / "bands.onnx", BANDS)


def loudest(clip_name):
    return int(np.argmax(AMPLITUDES[int(clip_name.split("clip")[1].split(".")[0])]))


def run(model, data, db, **kw):
    return evaluate(model, data, db, ks=KS, **{"workers": 0, **FAST, **kw})


def comparable(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.fixture(scope="module")
def serial(model, tmp_path_factory):
    """A serial run on 4 clips, an unreadable file, a text file and a hidden file."""
    d = write_clips(tmp_path_factory.mktemp("data"), range(4))
    (d / "broken.wav").write_bytes(b"RIFF\x00\x00not audio at all" * 4)
    (d / "notes.txt").write_text("not audio")
    (d / ".hidden.wav").write_bytes(b"")
    db = d.parent / "serial.sqlite"
    # one ONNX Runtime thread, as Dask workers use: then even float outputs match exactly
    return run(model, d, db, options=ModelConfig(threads=1)), d, db


def test_clips_are_found_sorted_by_relative_path(serial):
    _, d, _ = serial
    assert [c for c, _ in find_clips(d)] == [
        "a/clip1.wav", "a/clip3.wav", "b/clip0.wav", "b/clip2.wav", "broken.wav"]


def test_serial_run_stores_one_row_per_clip_and_per_attack(serial):
    ev, _, db = serial
    assert (ev.total, ev.skipped, ev.processed, ev.errors, ev.workers) == (5, 0, 5, 1, 0)
    with Store(db) as store:
        clips, attacks = store.clips(), store.attacks()
    ok = [c for c in clips if c["status"] == "ok"]
    assert len(clips) == 5 and len(ok) == 4
    for c in ok:
        lo, hi = BANDS[loudest(c["clip"])]
        assert c["target"] == loudest(c["clip"]) and c["label"] == f"{lo}-{hi}Hz"
        assert c["n_samples"] == N and c["n_bins"] == c["fft_n_features"] == N // 2 + 1
        assert c["fft_sufficient_found"] and c["fft_sufficient_verified"]
        # k <= k' <= k'' holds for the prefixes; the minimal sets are shrunk from them
        assert (c["fft_sufficient_prefix_size"] <= c["fft_necessary_prefix_size"]
                <= c["fft_complete_prefix_size"])
        assert all(c[f"fft_{kind}_size"] <= c[f"fft_{kind}_prefix_size"] for kind in KINDS)
        assert c["fft_sufficient_share"] == pytest.approx(c["fft_sufficient_size"] / (N // 2 + 1))
        assert c["model_calls"] == c["fft_model_calls"] + c["stft_model_calls"] > 0
        assert c["model_loads"] == 1 and c["error"] is None
    keys = [(a["clip"], a["domain"], a["k"]) for a in attacks]
    assert sorted(keys) == sorted((c["clip"], d, k) for c in ok for d in ("fft", "stft")
                                  for k in KS)
    assert any(a["flipped"] for a in attacks) and not all(a["flipped"] for a in attacks)


def test_an_unreadable_file_gets_an_error_row_and_the_run_goes_on(serial):
    _, _, db = serial
    with Store(db) as store:
        broken = [c for c in store.clips() if c["clip"] == "broken.wav"][0]
        assert not [a for a in store.attacks() if a["clip"] == "broken.wav"]
    assert broken["status"] == "error" and "broken.wav" in broken["error"]
    assert broken["fft_sufficient_size"] is None


def test_summary_equals_what_the_rows_say(serial):
    ev, _, db = serial
    s = summarize(db)
    assert s.value("all", "clips") == 5 and s.ok == 4 and s.errors[0][0] == "broken.wav"
    with Store(db) as store:
        ok = [c for c in store.clips() if c["status"] == "ok"]
        attacks = store.attacks()
    for domain in ("fft", "stft"):
        for kind in ("sufficient", "necessary", "complete"):
            sizes = [c[f"{domain}_{kind}_size"] for c in ok if c[f"{domain}_{kind}_found"]]
            assert s.value(domain, f"{kind}_size_mean") == pytest.approx(np.mean(sizes))
            assert s.value(domain, f"{kind}_size_median") == pytest.approx(np.median(sizes))
        for k in KS:
            flips = sum(a["flipped"] for a in attacks if a["domain"] == domain and a["k"] == k)
            assert s.value(domain, f"flip_rate_k{k}") == pytest.approx(flips / 4)
        first = {}
        for a in attacks:
            if a["domain"] == domain and a["flipped"]:
                first.setdefault(a["clip"], a["snr_db"])
        snr = s.value(domain, "snr_median_db")
        assert (snr is None and not first) or snr == pytest.approx(np.median(list(first.values())))
        assert s.value(domain, "model_calls_mean") == pytest.approx(
            np.mean([c[f"{domain}_model_calls"] for c in ok]))
    assert ev.summary.metrics == s.metrics
    rows = dict((label, cells) for label, cells, _ in s.rows())
    assert rows["flip rate at k = 1"][0].endswith(
        f"({round(4 * s.value('fft', 'flip_rate_k1'))}/4)")


def test_resume_processes_only_the_new_clips(model, tmp_path):
    data, db = write_clips(tmp_path / "data", range(3)), tmp_path / "r.sqlite"
    first = run(model, data, db)
    assert (first.processed, first.skipped) == (3, 0)
    with Store(db) as store:
        before = {c["clip"]: c["finished"] for c in store.clips()}
    write_clips(data, range(3, 5))
    second = run(model, data, db)
    assert (second.total, second.processed, second.skipped) == (5, 2, 3)
    with Store(db) as store:
        clips, attacks = store.clips(), store.attacks()
    assert len(clips) == 5 and len(attacks) == 5 * 2 * len(KS)
    # the first three clips were not evaluated again
    assert {c["clip"]: c["finished"] for c in clips if c["clip"] in before} == before
    assert run(model, data, db).processed == 0


def test_internal_errors_are_retried_and_clip_errors_on_request(model, tmp_path,
                                                                monkeypatch):
    data, db = write_clips(tmp_path / "data", range(2)), tmp_path / "x.sqlite"
    (data / "broken.wav").write_bytes(b"not audio")

    def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(sys.modules["freqrex.evaluation.task"], "_run_domain", bug)
    assert run(model, data, db, domains=("fft",)).errors == 3
    with Store(db) as store:
        assert all(c["error"].startswith("internal error: RuntimeError: a bug at")
                   for c in store.clips())
    monkeypatch.undo()
    again = run(model, data, db, domains=("fft",))
    assert (again.processed, again.errors) == (3, 1)  # every clip retried; broken.wav fails
    assert run(model, data, db, domains=("fft",)).processed == 0  # its own error stands
    sf.write(data / "broken.wav", make_clip(n=N), SR, subtype="FLOAT")
    fixed = run(model, data, db, domains=("fft",), retry_errors=True)
    assert (fixed.processed, fixed.errors, fixed.summary.ok) == (1, 0, 3)


def test_different_settings_on_the_same_db_are_refused(model, tmp_path):
    data, db = write_clips(tmp_path / "data", [0]), tmp_path / "s.sqlite"
    run(model, data, db, domains=("fft",))
    with pytest.raises(FreqrexError, match=r"different settings \(seed 1 -> 2\); use a new --db"):
        run(model, data, db, domains=("fft",), seed=2)
    with pytest.raises(FreqrexError, match="different settings.*ks 1,5,20 -> 1"):
        evaluate(model, data, db, workers=0, ks=(1,), domains=("fft",), **FAST)
    other = band_energy_model(tmp_path / "other.onnx", BANDS[:2])
    with pytest.raises(FreqrexError, match="another model"):
        run(other, data, db, domains=("fft",))
    # a setting that changes no result may change
    assert run(model, data, db, domains=("fft",), batch_size=7).processed == 0


def test_a_real_dask_cluster_gives_the_serial_rows(serial, model):
    from distributed import Client, LocalCluster

    _, data, serial_db = serial
    db = serial_db.with_name("dask.sqlite")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        ev = run(model, data, db, scheduler=cluster.scheduler_address)
        with Client(cluster) as client:
            states = client.run(worker_state)
    assert ev.workers == 2 and ev.processed == 5
    with Store(serial_db) as a, Store(db) as b:
        assert comparable(b.clips()) == comparable(a.clips())
        assert b.attacks() == a.attacks()
        workers = {c["worker"] for c in b.clips()}
        assert all(c["model_loads"] == 1 for c in b.clips() if c["status"] == "ok")
    # two worker processes shared the clips, and each loaded the model exactly once
    assert len(workers) == 2 and os.getpid() not in {int(w.split(":")[1]) for w in workers}
    assert sorted(s["loads"][str(model.resolve())] for s in states.values()) == [1, 1]


def _count(db):
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            return conn.execute("SELECT count(*) FROM clips").fetchone()[0]
        except sqlite3.OperationalError:  # tables not created yet
            return 0


def _check_whole(db, domains=("fft", "stft")):
    """Every clip row has all its attack rows, and no attack row is orphaned."""
    with Store(db) as store:
        clips, attacks = store.clips(), store.attacks()
    per_clip = {}
    for a in attacks:
        per_clip.setdefault(a["clip"], set()).add((a["domain"], a["k"]))
    whole = {(d, k) for d in domains for k in KS}
    assert set(per_clip) <= {c["clip"] for c in clips}
    assert all(per_clip.get(c["clip"]) == whole for c in clips if c["status"] == "ok")
    return clips


def test_kill_minus_9_mid_run_then_resume(model, tmp_path):
    data, db = write_clips(tmp_path / "data", range(8)), tmp_path / "k.sqlite"
    command = [sys.executable, "-m", "freqrex.cli", "evaluate", str(data), "--db", str(db),
               "--onnx", str(model), "--workers", "2", "--ks", "1,5,20", "--iterations", "4",
               "--search-limit", "1500", "--seed", "1", "--quiet"]
    log = open(tmp_path / "log.txt", "w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _count(db) < 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI, its Dask nannies and workers
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "log.txt").read_text()
    before = _check_whole(db)
    assert 1 <= len(before) < 8, "the kill should land mid-run"
    finished = {c["clip"]: c["finished"] for c in before}

    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _check_whole(db)
    assert sorted(c["clip"] for c in after) == [c for c, _ in find_clips(data)]
    assert all(c["status"] == "ok" for c in after)
    assert {c["clip"]: c["finished"] for c in after if c["clip"] in finished} == finished
    assert f"{8 - len(before)} clips evaluated on 2 Dask workers" in done.stderr


def test_cli_prints_the_table_and_writes_the_report(serial, model, tmp_path):
    _, data, _ = serial
    report = tmp_path / "out" / "report.md"
    code, stdout, stderr = invoke("evaluate", data, "--db", tmp_path / "c.sqlite", "--onnx",
                                  model, "--workers", "0", "--ks", "1,5,20", "--iterations", "2",
                                  "--search-limit", "150", "--seed", "1", "--report", report)
    assert code == 0, stderr
    assert "flip rate at k = 1" in stdout and "58% (fft)" in stdout
    assert "[5/5]" in stderr and "clip failed: broken.wav" in stderr
    assert {p.name for p in report.parent.iterdir()} == {
        "report.md", "report.csv", "flip_rate.png", "sizes.png", "report.html"}
    text = report.read_text()
    assert "| flip rate at k = 5 |" in text and "78% (fft)" in text and "broken.wav" in text
    lines = (report.parent / "report.csv").read_text().splitlines()
    assert lines[0] == "domain,metric,value,n" and "fft,flip_rate_k1," in "\n".join(lines)
    flip = [line for line in lines if line.startswith("fft,flip_rate_k1,")][0].split(",")
    assert math.isclose(float(flip[2]), summarize(tmp_path / "c.sqlite").value("fft",
                                                                                "flip_rate_k1"))


@pytest.mark.parametrize("case, words", [
    ("missing", "does not exist"),
    ("empty", "no audio files under"),
    ("scheduler", "cannot reach the Dask scheduler"),
    ("settings", "different settings"),
])
def test_cli_errors_are_one_line(model, tmp_path, case, words):
    data = tmp_path / "data"
    data.mkdir()
    args = ["--db", tmp_path / "e.sqlite", "--onnx", model, "--workers", "0", *sum(
        ([f"--{k.replace('_', '-')}", v] for k, v in FAST.items()), [])]
    if case == "missing":
        data = tmp_path / "nope"
    elif case == "scheduler":
        write_clips(data, [0])
        args += ["--scheduler", "tcp://127.0.0.1:1", "--timeout", "1"]
    elif case == "settings":
        write_clips(data, [0])
        assert invoke("evaluate", data, *args, "--domains", "fft")[0] == 0
    code, stdout, stderr = invoke("evaluate", data, *args, "--quiet")
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], stderr
    assert "Traceback" not in stdout + stderr


def test_onnx_model_threads_option(model):
    from freqrex import OnnxModel

    x = make_clip(n=N)[None]
    np.testing.assert_array_equal(OnnxModel(model, threads=1)(x), OnnxModel(model, threads=2)(x))
    with pytest.raises(FreqrexError, match="threads must be a positive integer"):
        OnnxModel(model, threads=0)


# -- the records and the store, without a model ---------------------------------------------

# The v2 ``clips`` columns, in order (v1 had no prefix_size and minimal): a database made
# before the records became dataclasses must still open and resume.
V2_CLIP_COLUMNS = (
    "clip status error retry warnings target label confidence sample_rate n_samples n_bins "
    + " ".join(f"{d}_{name}" for d in ("fft", "stft") for name in (
        ["n_features", "model_calls", "seconds", "seconds_model",
         "disjoint_sets", "union_share", "union_energy"]  # redundancy (multiple > 1)
        + [f"{kind}_{f}" for kind in ("sufficient", "necessary", "complete")
           for f in ("found", "verified", "size", "share", "energy", "prefix_size", "minimal")]))
    + " model_calls seconds seconds_model worker model_loads finished").split()
V2_ATTACK_COLUMNS = ("clip domain mode k touched within_necessary flipped class_index label "
                     "confidence target_confidence snr_db gain gain_db seg_snr_db "
                     "mask_ratio_db above_mask inaudible answered").split()  # v3: attack modes


def a_record(clip="x.wav", snr=3.5):
    sets = {kind: SetRecord(found=True, verified=kind != "complete", size=3 + i, share=0.25,
                            energy=0.5) for i, kind in enumerate(KINDS)}
    domain = DomainRecord(n_features=12, model_calls=40, seconds=0.5, seconds_model=0.25, sets=sets)
    steps = tuple(AttackRecord(clip=clip, domain="fft", mode="remove", k=k, touched=k,
                               within_necessary=True, flipped=k > 1, class_index=1, label="b",
                               confidence=0.6, target_confidence=0.3, snr_db=snr)
                  for k in (1, 5))
    return ClipRecord(clip=clip, warnings=("padded", "resampled"), target=0, label="a",
                      confidence=0.9, sample_rate=SR, n_samples=22, n_bins=12, model_calls=40,
                      domains={"fft": domain}, seconds=1.0, seconds_model=0.25, worker="h:1",
                      model_loads=1, finished=2.0, attacks=steps)


def test_records_are_plain_data_and_round_trip_through_pickle_and_the_v2_store(tmp_path):
    import pickle

    assert CLIP_FIELDS == V2_CLIP_COLUMNS and ATTACK_FIELDS == V2_ATTACK_COLUMNS
    record = a_record(snr=float("nan"))
    assert repr(pickle.loads(pickle.dumps(record))) == repr(record)  # NaN != NaN
    with Store(tmp_path / "r.sqlite", settings={"seed": 0}) as store:
        assert store.write(record) and not store.write(record)  # the first copy stands
        (row,), attacks = store.clips(), store.attacks()
    assert row["warnings"] == "padded\nresampled" and row["retry"] == 0
    assert row["fft_necessary_size"] == 4 and row["fft_complete_verified"] == 0
    assert row["stft_n_features"] is None and row["fft_seconds_model"] == 0.25
    assert [(a["k"], a["flipped"], a["snr_db"]) for a in attacks] == [(1, 0, None), (5, 1, None)]
    # an error row has no results; it is retried only when it was not the clip's fault
    with Store(tmp_path / "r.sqlite") as store:
        store.write(error_record("bug.wav", "internal error", retry=True))
        store.write(error_record("bad.wav", "unreadable"))
        assert store.done_clips() == {"x.wav", "bad.wav"}
        assert store.error_clips(retry_only=True) == {"bug.wav"}
        bad = [c for c in store.clips() if c["clip"] == "bad.wav"][0]
    assert (bad["status"], bad["warnings"], bad["fft_sufficient_found"]) == ("error", None, None)


def test_params_go_to_the_config_or_the_attack_and_unknown_ones_are_named(model, tmp_path):
    data, db = write_clips(tmp_path / "data", [0]), tmp_path / "p.sqlite"
    with pytest.raises(InputError, match=r"unknown parameter\(s\) colour, speed;"):
        run(model, data, db, colour=1, speed=2)
    with pytest.raises(InputError, match=r"threads \(model options go in options="):
        run(model, data, db, threads=1)
    with pytest.raises(InputError, match="ks must be positive whole numbers"):
        evaluate(model, data, db, workers=0, ks=(0,))
    with pytest.raises(InputError, match="iterations must be a positive integer"):
        run(model, data, db, iterations=0)
    with pytest.raises(InputError, match="workers must be 0"):
        run(model, data, db, workers=-1)
    assert not db.exists()  # nothing is created before the parameters are checked


def test_progress_and_on_clip_report_each_stored_clip(model, tmp_path):
    data, db = write_clips(tmp_path / "data", range(2)), tmp_path / "g.sqlite"
    run(model, data, db, attack=AttackConfig(ks=KS, domains=("fft",)))
    write_clips(data, [2])
    calls = []
    ev = evaluate(model, data, db, workers=0, attack=AttackConfig(ks=KS, domains=("fft",)),
                  progress=lambda *a: calls.append(a), on_clip=calls.append, **FAST)
    assert calls[:2] == [("clips", 2, 3), ("clips", 3, 3)] and ev.processed == 1
    assert type(calls[2]) is ClipRecord and calls[2].clip == "b/clip2.wav"
    assert calls[2].status == "ok" and {a.domain for a in calls[2].attacks} == {"fft"}


def test_the_report_files_and_figures(serial, tmp_path):
    ev, _, _ = serial
    written = write_report(ev.summary, tmp_path / "r" / "report.md")
    assert sorted(p.name for p in written if p.stat().st_size) == [
        "flip_rate.png", "report.csv", "report.md", "sizes.png"]
    assert (tmp_path / "r" / "report.md").read_text() == to_markdown(ev.summary)
    fig = sizes_figure(ev.summary)
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "stft explanation sizes"
    lines = {line.get_label(): line for line in flip_rate_figure(ev.summary).axes[0].lines}
    assert list(lines["paper, fft"].get_ydata()) == pytest.approx([58, 78])
    assert list(lines["fft (this run)"].get_xdata()) == list(KS)
    with pytest.raises(OutputError, match="is a directory"):
        write_report(ev.summary, tmp_path)


def test_the_tables_import_no_matplotlib_and_the_figures_no_pyplot():
    code = """if True:
        import sys
        import freqrex.evaluation
        assert not [m for m in sys.modules if m.startswith(("matplotlib", "distributed"))]
        from freqrex.evaluation import Summary
        from freqrex.output.evaluation import flip_rate_figure, sizes_figure
        s = Summary(db="", run={}, clips=0, ok=0, errors=[], domains=["fft"], ks=[1, 5])
        flip_rate_figure(s), sizes_figure(s)
        assert "matplotlib.figure" in sys.modules and "matplotlib.pyplot" not in sys.modules
    """
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sizes_of_clips_of_different_lengths_are_shown_as_shares():
    from freqrex.evaluation import Summary

    s = Summary(db="", run={}, clips=2, ok=2, errors=[], domains=["fft"], ks=[1, 5],
                sizes={"fft": {kind: np.array([10.0, 400.0]) for kind in KINDS}},
                shares={"fft": {kind: np.array([0.01, 0.02]) for kind in KINDS}},
                mixed_lengths={"fft": True})
    ax = sizes_figure(s).axes[0]
    assert ax.get_title() == "fft explanation shares (clips differ in length)"
    assert ax.get_xlabel() == "size (% of bins)"
    assert "median 1.5" in ax.get_legend().get_texts()[0].get_text()
    s.mixed_lengths["fft"] = False
    assert sizes_figure(s).axes[0].get_xlabel() == "size (bins)"
