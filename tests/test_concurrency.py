"""Other users and other runs (issue 10): foreign SQLite files left untouched, two evaluate
processes sharing one database, claims that expire, and a local Dask cluster that only this
run can talk to."""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
import soundfile as sf
from oracles import BANDS, SR, band_energy_model, make_clip

from freqrex.errors import FreqrexError
from freqrex.evaluation import Store
from freqrex.evaluation.claims import Claims

N = 8192
AMPLITUDES = [(1.0, 0.8, 0.5), (0.5, 1.0, 0.9), (0.3, 0.5, 1.0), (1.0, 0.9, 0.4)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return band_energy_model(tmp_path_factory.mktemp("model") / "bands.onnx", BANDS)


def write_clips(folder, count):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        clip = make_clip(seed=i, amplitudes=AMPLITUDES[i % 4], n=N)
        sf.write(folder / f"clip{i}.wav", clip, SR, subtype="FLOAT")
    return folder


def test_a_foreign_sqlite_file_is_refused_byte_identical(tmp_path):
    # before: refused, but already switched to WAL (header bytes 18-19 changed)
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("INSERT INTO notes (text) VALUES ('keep me')")
    conn.close()
    before = path.read_bytes()
    assert before[18:20] == b"\x01\x01"  # rollback journal, not WAL
    for settings in (None, {"seed": 0}):
        with pytest.raises(FreqrexError, match="not a freqrex results database"):
            Store(path, settings=settings)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.sqlite"]  # no -wal, -shm


def test_claims_are_exclusive_and_a_crashed_runs_claims_expire(model, tmp_path):
    db = tmp_path / "c.sqlite"
    Store(db, settings={"seed": 0}).close()
    clips = [f"c{i}.wav" for i in range(6)]
    a, b = Claims(db), Claims(db)
    assert a.take(clips, 2) == ["c0.wav", "c1.wav"]
    assert b.take(clips, 10) == ["c2.wav", "c3.wav", "c4.wav", "c5.wav"]
    assert a.take(clips, 10) == [] and a.others() and len(a.unfinished(clips)) == 6
    b.release()
    # a process of this host that no longer exists: its claim is free at once
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    far = time.time() + 3600
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO claims VALUES ('c2.wav', 'x', ?, ?, ?)",
                     (socket.gethostname(), int(dead), far))
        # another machine's claims: valid until they expire
        conn.execute("INSERT INTO claims VALUES ('c3.wav', 'y', 'elsewhere', 1, ?)", (far,))
        conn.execute("INSERT INTO claims VALUES ('c4.wav', 'z', 'elsewhere', 2, ?)",
                     (time.time() - 1,))
    conn.close()
    assert a.take(clips, 10) == ["c2.wav", "c4.wav", "c5.wav"]
    a.release()
    a.close()
    b.close()


EVALUATE = """if True:
    import json, sys
    from freqrex.config import ModelConfig
    from freqrex.evaluation import evaluate
    ev = evaluate(sys.argv[1], sys.argv[2], sys.argv[3], workers=0, ks=(1, 5),
                  domains=("fft",), iterations=4, search_limit=400, seed=1,
                  options=ModelConfig(threads=1))
    print(json.dumps({"processed": ev.processed, "duplicates": ev.duplicates,
                      "skipped": ev.skipped, "total": ev.total}))
"""


def test_two_evaluate_processes_share_the_work(model, tmp_path):
    # before: both computed every clip (the store dropped the second copies)
    data = write_clips(tmp_path / "data", 8)
    db = tmp_path / "shared.sqlite"
    command = [sys.executable, "-c", EVALUATE, str(model), str(data), str(db)]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    runs = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(r["processed"] for r in runs) == 8, runs
    assert all(r["total"] == 8 and r["processed"] + r["skipped"] == 8 for r in runs)
    assert all(r["duplicates"] == 0 for r in runs), runs
    with Store(db) as store:
        clips = store.clips()
        claims = store.conn.execute("SELECT count(*) FROM claims").fetchone()[0]
    assert len(clips) == 8 and all(c["status"] == "ok" for c in clips)
    assert claims == 0  # every claim released
    if min(r["processed"] for r in runs) == 0:
        pytest.skip("one process finished all clips before the other started (busy machine)")
    assert len({c["worker"] for c in clips}) == 2


def test_the_local_cluster_refuses_clients_without_its_credentials(model, tmp_path):
    from distributed import Client

    from freqrex.evaluation.dispatch import _dask_client

    with _dask_client(1, None, 10) as client:
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        for wrong in (address.replace("tls://", "tcp://"), address):
            with pytest.raises(Exception):  # noqa: B017 - plain TCP, TLS without the certs
                Client(wrong, timeout=3)
        # no dashboard: Dask's HTTP server still listens, on a random port, serving nothing
        import urllib.error
        import urllib.request

        port = client.scheduler_info()["services"]["dashboard"]
        assert port != 8787
        for route in ("/status", "/health", "/info/main/workers.html", "/json/counts.json"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}{route}", timeout=5)
        assert client.submit(sum, [1, 2]).result() == 3


RACE = """if True:
    import os, sys, time
    from freqrex.evaluation.store import Store

    def opens(path, at):
        while time.time() < at:   # every process starts at the same instant
            pass
        try:
            Store(path, settings={"seed": 0}, data_dir="/data").conn.close()
            return b"ok"
        except Exception as exc:
            return str(exc).encode()[:300]

    failures = []
    for trial in range(int(sys.argv[2])):
        path, at, children = os.path.join(sys.argv[1], f"{trial}.sqlite"), time.time() + 0.05, []
        for _ in range(4):
            r, w = os.pipe()
            if os.fork() == 0:
                os.write(w, opens(path, at))
                os._exit(0)
            os.close(w)
            children.append(r)
        for r in children:
            answer = os.read(r, 400).decode()
            if answer != "ok":
                failures.append(answer)
        while True:
            try:
                os.wait()
            except ChildProcessError:
                break
    print(len(failures), failures[:1])
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_processes_opening_one_new_database_at_once_all_get_it(tmp_path):
    # SQLite does not wait for the lock of the switch to WAL: before, about one start in ten
    # of four processes had one told "database is locked" and refused as "not a freqrex
    # results database" (seen in CI through the two-process evaluate test above)
    out = subprocess.run([sys.executable, "-c", RACE, str(tmp_path), "40"], capture_output=True,
                         text=True, timeout=300)
    assert out.stdout.startswith("0 "), (out.stdout, out.stderr)
