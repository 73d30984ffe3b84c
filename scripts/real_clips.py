"""Cut real recorded music from Debian game-soundtrack packages into 16 kHz mono clips.

Installs nothing: it reads the files of packages already installed (scripts/README.md
gives the ``apt-get install`` line) and writes, under ``--out``:

    30s/<package>__<track>.wav    one clip of 30 s per track (PCM_16, 16 kHz, mono)
    10s/<package>__<track>.wav    one clip of 10 s per track, the middle third of the 30 s clip
    manifest.json                 per clip: source file and its sha256, offset, duration,
                                  title/composer where known, copyright, licence, clip sha256

Every track long enough is used once (the ``_fast`` replays of SuperTuxKart tracks and
tracks under 34 s are skipped), so no two clips of a set share a track. The 30 s clip
is centred in the track (offset rounded to whole seconds), away from intros and fades.
Same package files, same numpy/soxr/libsndfile: the same clips bit for bit (only
decoding, an average of channels, soxr's resampler and rounding to 16 bits are involved).

    .venv/bin/python scripts/real_clips.py --out /tmp/real_clips
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 16000
LONG, SHORT = 30, 10
MIN_TRACK_S = LONG + 4  # room for the centred clip to avoid the very start and end


@dataclass(frozen=True)
class Source:
    """One Debian package's music folder and where its licence terms are written."""

    package: str
    folder: Path
    copyright: Path
    # the path stanzas of a machine-readable (DEP-5) copyright file refer to, relative to
    # the package's data root; None: the file is free-form and covers the whole package
    dep5_prefix: str | None
    # for a free-form file: its licence, as it states it for the whole package ("GNU
    # General Public License version 2 or at your option any later version")
    whole_package_licence: str | None = None


SOURCES = (
    Source("supertuxkart-data", Path("/usr/share/games/supertuxkart/data/music"),
           Path("/usr/share/doc/supertuxkart-data/copyright"), "data/music/"),
    # wesnoth's copyright file is free-form: the whole game, music included, is GPL-2+
    Source("wesnoth-1.16-music", Path("/usr/share/games/wesnoth/1.16/data/core/music"),
           Path("/usr/share/doc/wesnoth-1.16-music/copyright"), None, "GPL-2+"),
)


def dep5_stanzas(text: str) -> list[dict[str, str]]:
    """The paragraphs of a DEP-5 copyright file as ``{field: first line + continuation}``."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        if "Files" in fields:
            stanzas.append(fields)
    return stanzas


def dep5_terms(stanzas: list[dict[str, str]], path: str) -> tuple[str, str]:
    """(copyright, licence name) of ``path``: the *last* matching stanza wins (DEP-5)."""
    found = ("unknown", "unknown")
    for stanza in stanzas:
        if any(fnmatch.fnmatchcase(path, p) for p in stanza["Files"].split()):
            found = (" ".join(stanza.get("Copyright", "").split()),
                     stanza.get("License", "unknown").splitlines()[0].strip())
    return found


def track_title(path: Path) -> dict[str, str]:
    """Title and composer from a SuperTuxKart ``.music`` file beside the track, if any."""
    for music in path.parent.glob("*.music"):
        text = music.read_text(errors="replace")
        if re.search(rf'file\s*=\s*"{re.escape(path.name)}"', text):
            return {k: v for k in ("title", "composer")
                    if (v := _attr(text, k)) is not None}
    return {}


def _attr(text: str, name: str) -> str | None:
    match = re.search(rf'\b{name}\s*=\s*"([^"]*)"', text)
    return match.group(1) if match else None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_mono_16k(path: Path) -> np.ndarray:
    """The whole track as float64 mono at 16 kHz (mean of channels, then soxr HQ)."""
    audio, rate = sf.read(path, dtype="float64", always_2d=True)
    mono = audio.mean(axis=1)
    return soxr.resample(mono, rate, RATE, quality="HQ") if rate != RATE else mono


def write_pcm16(path: Path, audio: np.ndarray) -> None:
    # clip explicitly: the resampler can overshoot full scale slightly
    pcm = np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)
    sf.write(path, pcm, RATE, subtype="PCM_16")


def tracks(source: Source) -> list[Path]:
    files = sorted(p for p in source.folder.glob("*.ogg") if not p.stem.endswith(("_fast", "_f")))
    return files


def cut(out: Path, sources: tuple[Source, ...]) -> list[dict]:
    """Write the clips of every track of ``sources`` under ``out``; the manifest rows."""
    rows: list[dict] = []
    for folder in (LONG, SHORT):
        (out / f"{folder}s").mkdir(parents=True, exist_ok=True)
    for source in sources:
        if not source.folder.is_dir():
            print(f"skip {source.package}: {source.folder} not found "
                  f"(apt-get install {source.package})", file=sys.stderr)
            continue
        stanzas = (dep5_stanzas(source.copyright.read_text())
                   if source.dep5_prefix is not None else [])
        for track in tracks(source):
            info = sf.info(track)
            if info.duration < MIN_TRACK_S:
                continue
            if source.dep5_prefix is not None:
                holder, licence = dep5_terms(stanzas, source.dep5_prefix + track.name)
            else:
                holder, licence = "see the package's copyright file", \
                    source.whole_package_licence or "unknown"
            audio = load_mono_16k(track)
            offset_s = int((len(audio) / RATE - LONG) // 2)
            name = f"{source.package}__{track.stem}.wav"
            for seconds, start_s in ((LONG, offset_s), (SHORT, offset_s + (LONG - SHORT) // 2)):
                clip = audio[start_s * RATE:(start_s + seconds) * RATE]
                assert len(clip) == seconds * RATE, (track, seconds)
                target = out / f"{seconds}s" / name
                write_pcm16(target, clip)
                rows.append({
                    "clip": f"{seconds}s/{name}", "set": f"{seconds}s", "seconds": seconds,
                    "package": source.package, "source": str(track),
                    "source_sha256": sha256(track), "offset_s": start_s,
                    "source_rate": info.samplerate, "source_channels": info.channels,
                    "source_seconds": round(info.duration, 3), **track_title(track),
                    "copyright": holder, "licence": licence,
                    "licence_file": str(source.copyright), "clip_sha256": sha256(target),
                    "rms_dbfs": round(float(20 * np.log10(np.sqrt(np.mean(clip ** 2)) + 1e-12)),
                                      2)})
            print(f"{name}: offset {offset_s} s, {licence}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/real_clips"))
    parser.add_argument("--packages", default=",".join(s.package for s in SOURCES),
                        help="comma-separated packages to read (default: all known)")
    args = parser.parse_args(argv)
    wanted = args.packages.split(",")
    unknown = set(wanted) - {s.package for s in SOURCES}
    if unknown:
        parser.error(f"unknown package(s) {sorted(unknown)}; known: "
                     f"{', '.join(s.package for s in SOURCES)}")
    rows = cut(args.out, tuple(s for s in SOURCES if s.package in wanted))
    if not rows:
        print("error: no track found; install the packages (see scripts/README.md)",
              file=sys.stderr)
        return 2
    (args.out / "manifest.json").write_text(json.dumps(
        {"rate": RATE, "sets": {f"{s}s": sum(r["seconds"] == s for r in rows)
                                for s in (LONG, SHORT)}, "clips": rows}, indent=1) + "\n")
    print(f"{len(rows) // 2} tracks -> {args.out}/30s and {args.out}/10s, manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
