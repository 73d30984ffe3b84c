"""The examples in examples/ run from start to end (a smoke test: they are documentation)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_explain_and_listen_runs_and_writes_a_report(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "explain_and_listen.py"),
                           str(out)], capture_output=True, text=True, timeout=600,
                          env={"MPLBACKEND": "Agg", "PATH": "", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "target  flute" in proc.stdout and "open " in proc.stdout
    assert "attack (remove) on flute" in proc.stdout
    assert (out / "report.html").is_file() and (tmp_path / "results.png").is_file()
