"""What the tagger's top tag flipped *to*: a near-synonym, the same kind of tag, or another.

``freqrex evaluate`` counts a flip whenever the top tag changes. For a 50-tag tagger that
can be a move to a near-synonym ("techno" -> "electronic") that no listener would call a
different classification. This reads an evaluation database and, for each domain, attack
mode and k, splits the flips by where the new top tag lies relative to the clip's own
(groups in ``musicnn_tag_groups.json``, our judgement): *synonym* (same synonym group),
*same family* (e.g. genre -> genre), *other family* (e.g. genre -> instrument). It also
prints seconds and model calls per clip. The output is Markdown.

Run: ``python scripts/flip_families.py results.db [--groups scripts/musicnn_tag_groups.json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from freqrex.evaluation.store import Store

HERE = Path(__file__).resolve().parent


def relation(a: str, b: str, groups: dict) -> str:
    """``synonym``, ``same family`` or ``other family`` for tags ``a`` -> ``b``."""
    if any(a in g and b in g for g in groups["synonyms"]):
        return "synonym"
    family = {tag: name for name, tags in groups["families"].items() for tag in tags}
    return "same family" if family.get(a) == family.get(b) else "other family"


def flip_table(clips: list[dict], attacks: list[dict], groups: dict) -> list[str]:
    """Markdown rows: per domain, mode and k, flips (at most k changed) split by relation."""
    label = {c["clip"]: c["label"] for c in clips if c["status"] == "ok"}
    first: dict[tuple[str, str, str], dict] = {}   # (clip, domain, mode) -> smallest flip
    for a in sorted(attacks, key=lambda a: a["k"]):
        key = (a["clip"], a["domain"], a["mode"])
        if a["clip"] in label and a["flipped"] and key not in first:
            first[key] = a
    ks = sorted({a["k"] for a in attacks})
    combos = sorted({(a["domain"], a["mode"]) for a in attacks})
    rows = ["| domain | mode | k | clips flipped | to a synonym | same family | other family "
            "| judged inaudible |", "|---|---|---|---|---|---|---|---|"]
    for domain, mode in combos:
        for k in ks:
            hits = [a for (c, d, m), a in first.items() if d == domain and m == mode
                    and a["k"] <= k]
            kinds: dict[str, int] = defaultdict(int)
            for a in hits:
                kinds[relation(label[a["clip"]], a["label"], groups)] += 1
            quiet = sum(1 for a in hits if a["inaudible"])
            rows.append(f"| {domain} | {mode} | {k} | {len(hits)}/{len(label)} | "
                        f"{kinds['synonym']} | {kinds['same family']} | {kinds['other family']}"
                        f" | {quiet} |")
    return rows


def cost_lines(clips: list[dict]) -> list[str]:
    """Median and range of seconds and model calls per clip, per domain."""
    ok = [c for c in clips if c["status"] == "ok"]
    out = []
    for name in ("seconds", "model_calls", "fft_seconds", "fft_model_calls",
                 "stft_seconds", "stft_model_calls"):
        values = [c[name] for c in ok if c.get(name) is not None]
        if values:
            out.append(f"- {name.replace('_', ' ')} per clip: median "
                       f"{statistics.median(values):.0f} (min {min(values):.0f}, max "
                       f"{max(values):.0f}) over {len(values)} clips")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--groups", type=Path, default=HERE / "musicnn_tag_groups.json")
    args = parser.parse_args()
    groups = json.loads(args.groups.read_text())
    with Store(args.db) as store:
        clips, attacks = store.clips(), store.attacks()
    tops = defaultdict(int)
    for c in clips:
        if c["status"] == "ok":
            tops[c["label"]] += 1
    print("Top tags of the clips: " + ", ".join(f"{t} {n}" for t, n in
                                                sorted(tops.items(), key=lambda x: -x[1])))
    print()
    print("\n".join(flip_table(clips, attacks, groups)))
    print()
    print("\n".join(cost_lines(clips)))


if __name__ == "__main__":
    main()
