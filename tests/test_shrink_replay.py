"""scripts/shrink_replay.py: a saved state replays the explanation's own shrinks.

The script is how minimisation rules are judged (README, Benchmarks); a save that records
nothing, or a replay that starts from other sets or answers, would judge rules on the
wrong thing without failing.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import freqrex
from freqrex.examples import example_clips, reference_model

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"seed": 0, "iterations": 1, "search_limit": 60, "minimal_budget": 40}


def test_a_saved_state_replays_the_shrinks_of_the_explanation(tmp_path):
    clip = example_clips()[0]
    state = tmp_path / "state.npz"
    script = [sys.executable, str(ROOT / "scripts" / "shrink_replay.py")]
    subprocess.run(script + ["save", str(reference_model()), str(clip), str(state),
                             "--params", json.dumps(PARAMS)],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    saved = np.load(state, allow_pickle=False)
    result = freqrex.explain(str(reference_model()), clip, **PARAMS)
    found = [kind for kind, e in result.explanations.items() if e.found]
    assert [str(k) for k in saved["kinds"]] == found
    for i, kind in enumerate(found):   # the prefixes the extraction shrank
        assert np.array_equal(saved[f"set_{i}"],
                              result.ranking[:result.explanations[kind].prefix_size])
    assert len(saved["kept_keys"]) > 0

    out = subprocess.run(script + ["replay", str(state), "freqrex.minimal:shrink",
                                   "--budget", str(PARAMS["minimal_budget"])],
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    line = next(row for row in out.splitlines() if row.startswith("state freqrex.minimal"))
    for kind in ("necessary", "complete"):   # the sufficient set may be shrunk on after
        if kind in found:
            e = result.explanations[kind]
            assert f"{kind} {e.prefix_size} -> {e.size}{'*' if e.minimal else ''} (" in line
