"""Replay the minimisation of one explanation with other shrink rules, on the same answers.

Minimisation (:func:`freqrex.minimal.shrink`) is most of an explanation's cost after
the search, and what it returns depends on the path it takes, so a new rule must be
judged on many clips and on a real model. This saves, once, what the three shrinks start
from (the sets and the mutant answers known at that point), then runs any shrink rule on
it: the same model, the same prefixes, the same answers already paid for, so only the
rule differs. A tagger explanation takes minutes; its shrinks replay in two or three.

Save (runs one explanation; any ``freqrex.explain`` keyword as JSON)::

    python scripts/shrink_replay.py save freqrex/data/musicnn_mtt.onnx \\
        freqrex/data/real/lava_10s.flac lava.npz --params '{"seed": 0}'

Replay (``module:function`` with ``shrink``'s signature; the module is imported from the
current directory or the path) on one state or many::

    python scripts/shrink_replay.py replay lava.npz freqrex.minimal:shrink my_rules:other
    python scripts/shrink_replay.py replay states/*.npz freqrex.minimal:shrink my_rules:other

One line per state and rule: each set's size before and after (``*``: proven minimal),
the waveforms it cost and the model calls. With several states, a summary follows: per
kind, each rule's sizes against the first rule's (geometric mean, how many smaller and
larger), and its waveforms. The state file holds numbers only (no pickle).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from statistics import geometric_mean
from typing import Any

import numpy as np

import freqrex
from freqrex import extraction, pipeline
from freqrex.criterion import KINDS


class _Captured(Exception):
    """Raised to stop an explanation once its domain, criterion and mutants exist."""


def save(model: str, clip: str, out: Path, params: dict[str, Any]) -> None:
    state: dict[str, Any] = {"sets": []}
    together = extraction.shrink_together

    def recording(domain, criterion, sets, budget, mutants):
        # the three sets the extraction shrinks, and the answers known before it does
        state["kept"], state["removed"] = dict(mutants._kept), dict(mutants._removed)
        state["sets"] = [(kind, np.asarray(bins, dtype=np.int64)) for kind, bins in sets]
        return together(domain, criterion, sets, budget, mutants)

    extraction.shrink_together = recording
    started = time.perf_counter()
    try:
        result = freqrex.explain(model, clip, **params)
    finally:
        extraction.shrink_together = together
    if not state["sets"]:
        raise SystemExit("error: the explanation found no set to shrink")
    print(f"explained in {time.perf_counter() - started:.0f} s: {result.stats}")
    np.savez(out, model=model, clip=clip, params=json.dumps(params),
             kinds=np.array([kind for kind, _ in state["sets"]]),
             **{f"set_{i}": bins for i, (_, bins) in enumerate(state["sets"])},
             **_table("kept", state["kept"]), **_table("removed", state["removed"]))


def _table(name: str, answers: dict) -> dict[str, np.ndarray]:
    keys = np.array([[k[0], k[1], k[2]] for k in answers], dtype=np.uint64).reshape(-1, 3)
    values = np.array(list(answers.values()), dtype=np.float64)
    return {f"{name}_keys": keys, f"{name}_values": values}


def _answers(state: Any, name: str) -> dict:
    keys, values = state[f"{name}_keys"], state[f"{name}_values"]
    return {(int(k[0]), int(k[1]), int(k[2])): values[i] for i, k in enumerate(keys)}


def replay(path: Path, rules: list[str], budget: int) -> dict[str, tuple[dict, int]]:
    """Run each rule on one saved state; ``rule -> ({kind: size}, waveforms)``."""
    state = np.load(path, allow_pickle=False)
    params = json.loads(str(state["params"]))
    bound = pipeline.responsibility_map

    def capture(domain, criterion, config, **kwargs):
        raise _Captured(domain, criterion, kwargs["mutants"])

    pipeline.responsibility_map = capture
    try:
        freqrex.explain(str(state["model"]), str(state["clip"]), **params)
        raise SystemExit("error: the explanation did not reach its search")
    except _Captured as c:
        domain, criterion, mutants = c.args
    finally:
        pipeline.responsibility_map = bound
    kept, removed = _answers(state, "kept"), _answers(state, "removed")
    sets = [(str(kind), state[f"set_{i}"]) for i, kind in enumerate(state["kinds"])]
    model = criterion.model
    results: dict[str, tuple[dict, int]] = {}
    for rule in rules:
        module, _, name = rule.partition(":")
        shrink = getattr(importlib.import_module(module), name or "shrink")
        mutants._kept, mutants._removed = dict(kept), dict(removed)
        started, calls, parts, total = time.perf_counter(), model.stats.calls, [], 0
        sizes = {}
        for kind, bins in sets:
            before = model.stats.calls
            shrunk, minimal, _, spent = shrink(domain, criterion, kind, bins, budget, mutants)
            total += spent
            sizes[kind] = len(shrunk)
            parts.append(f"{kind} {len(bins)} -> {len(shrunk)}{'*' if minimal else ''} "
                         f"({spent} waveforms, {model.stats.calls - before} calls)")
        print(f"{path.stem} {rule}: {'; '.join(parts)}; {total} waveforms, "
              f"{model.stats.calls - calls} calls, {time.perf_counter() - started:.1f} s")
        results[rule] = sizes, total
    return results


def summary(runs: list[dict[str, tuple[dict, int]]], rules: list[str]) -> None:
    """Each rule against the first, over every replayed state."""
    for rule in rules[1:]:
        print(f"{rule} against {rules[0]}, {len(runs)} states:")
        for kind in KINDS:
            ratios = [run[rule][0][kind] / run[rules[0]][0][kind] for run in runs
                      if run[rules[0]][0].get(kind) and run[rule][0].get(kind)]
            if ratios:
                print(f"  {kind}: geometric mean {geometric_mean(ratios):.3f}x, smaller "
                      f"{sum(r < 1 for r in ratios)}, larger {sum(r > 1 for r in ratios)} "
                      f"of {len(ratios)}")
        spent = [run[rule][1] / run[rules[0]][1] for run in runs if run[rules[0]][1]]
        if spent:
            print(f"  waveforms: geometric mean {geometric_mean(spent):.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("save", help="explain once and save what the shrinks start from")
    s.add_argument("model")
    s.add_argument("clip")
    s.add_argument("out", type=Path)
    s.add_argument("--params", default="{}", help="freqrex.explain keywords, as JSON")
    r = sub.add_parser("replay", help="run shrink rules on a saved state")
    r.add_argument("items", nargs="+", help="saved states (.npz), then rules as "
                   "module:function, e.g. freqrex.minimal:shrink")
    r.add_argument("--budget", type=int, default=500, help="minimal_budget of each set")
    args = parser.parse_args()
    sys.path.insert(0, ".")
    if args.command == "save":
        save(args.model, args.clip, args.out, json.loads(args.params))
    else:
        states = [Path(item) for item in args.items if item.endswith(".npz")]
        rules = [item for item in args.items if not item.endswith(".npz")]
        if not states or not rules:
            raise SystemExit("error: give one saved state (.npz) or more, then one rule or more")
        runs = [replay(path, rules, args.budget) for path in states]
        if len(states) > 1 and len(rules) > 1:
            summary(runs, rules)


if __name__ == "__main__":
    main()
