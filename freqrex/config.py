"""Every parameter freqrex has, defined and checked here once.

Three frozen dataclasses: :class:`Config` (the search and the extraction),
:class:`AttackConfig` (the k-coefficient attacks) and :class:`ModelConfig` (how a model
file is opened). Each field carries its help text, and the command-line options are
generated from these fields (``freqrex.cli``), so a parameter exists in one place only.
Messages name parameters (``ks``), never command-line flags. How a field is declared and
checked (``param``, the range checks, memory sizes) is :mod:`freqrex.params`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import InitVar, dataclass
from pathlib import Path
from typing import Any

from freqrex.errors import InputError
from freqrex.params import (
    Checked,
    check_above,
    check_choice,
    check_positive,
    check_unit_interval,
    default_of,
    param,
    parse_ints,
    parse_memory,
    parse_range,
    parse_target,
    positive_int,
)

__all__ = ["ACTIVATIONS", "ATTACK_MODES", "DOMAINS", "NECESSARY_RULES", "PROVIDERS",
           "AttackConfig", "Config", "ModelConfig", "Progress", "default_of", "param",
           "parse_memory", "positive_int"]

DOMAINS = ("fft", "stft")
ACTIVATIONS = ("auto", "softmax", "sigmoid", "none")
SEARCHES = ("bracket", "linear")
CUTS = ("uniform", "energy")
NECESSARY_RULES = ("class", "confidence")
ATTACK_MODES = ("remove", "attenuate", "amplify", "set", "gain")
PROVIDERS = ("auto", "cpu", "cuda")
DEFAULT_KS = (1, 2, 5, 10, 20, 50, 100)

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: how every long computation reports how far it is."""


def parse_names(text: str) -> tuple[str, ...]:
    """``"fft,stft"``; ``"both"`` for every domain."""
    if text.strip() == "both":
        return DOMAINS
    return tuple(v.strip() for v in text.split(",") if v.strip())


@dataclass(frozen=True)
class Config(Checked):
    """Parameters of an explanation (names follow METHOD.md).

    Parameters
    ----------
    iterations : int
        Independent passes of the responsibility search, each with fresh random cuts.
    max_depth : int
        How many times a box may be split below the root.
    min_box_size : int
        Smallest child a split may produce, in bins (cells per side for stft).
    cuts : str
        Where a split cuts a box: ``"uniform"`` (default) over its features, or
        ``"energy"`` over its energy (each child a random share of the box's energy, so
        quiet bands are split less finely); see :mod:`freqrex.boxes`.
    search_limit : int
        Model evaluations (mutants) the responsibility search may spend over all iterations.
    stable_rounds, stability : int, float
        Adaptive stop: after each iteration the smallest sufficient prefix of the ranking
        so far is looked for among the sizes below ``stability`` times the best before it;
        an iteration improves the answer when one holds. After ``stable_rounds``
        iterations in a row without an improvement the search stops (``stable_rounds=0``,
        the default: every iteration runs; on the bundled tagger the stop gave larger sets).
    confidence_filter : float
        A mutant passes when its class is the target and its target probability is at least
        ``confidence_filter`` times the original's.
    batch_size : int
        Waveforms per model call; changes how work is batched, never the result.
    seed : int
        Seed of every random choice; the same seed gives the same result, bit for bit.
    domain : str
        Feature space: ``"fft"`` (rfft bins) or ``"stft"`` (time-frequency cells).
    n_fft, hop : int
        STFT window length and hop, in samples (stft domain).
    freq_range : tuple of float, optional
        Limit the search to bins within this Hz range; bins outside are kept as they are.
    target : int or str, optional
        Class to explain (index or label); the model's top class when omitted.
    output_activation : str
        How model outputs become probabilities: auto, softmax, sigmoid or none.
    search : str
        Extraction search: ``"bracket"`` (batched bracketing) or ``"linear"``.
    chunk : int
        Step, in bins, of the linear extraction search.
    complete_tolerance : float
        The complete set recovers the original confidence to within this (absolute) amount,
        both ways.
    necessary_rule : str
        ``"class"`` (default): removing a necessary set makes another class the top class;
        ``"confidence"``: the removal need only fail the sufficiency test.
    dense_limit : int
        Every prefix size up to this many features is tested in the first extraction batch,
        so a smallest prefix within it is proven smallest.
    minimal_budget : int
        Mutants the shrinking of each found set to a subset-minimal one may evaluate (the
        sufficient, necessary and complete sets each have this budget); 0 reports the
        prefixes unshrunk.
    multiple : int
        Up to this many sufficient sets, each subset-minimal and verified (1: only the
        first); see :mod:`freqrex.multiple`.
    max_overlap : float
        Share of an earlier set's features a later set may reuse (0: pairwise disjoint).
    multiple_budget : int
        Mutants the search for the sets after the first may evaluate (re-ranked prefix
        searches, fresh restricted responsibility searches and shrinking together).
    """

    target: int | str | None = param(
        None, "Class to explain: label or index (default: the model's top class).",
        parse=parse_target, metavar="CLASS")
    domain: str = param("fft", "Feature space: fft (rfft bins) or stft (time-frequency cells).")
    iterations: int = param(
        10, "Independent responsibility searches, each with fresh cuts and an equal share "
        "of search_limit (the search may stop earlier: stable_rounds).")
    max_depth: int = param(12, "How many times a box may be split below the root.")
    min_box_size: int = param(1, "Smallest box a split may produce, in bins.")
    cuts: str = param(
        "uniform", "Where splits cut a box: uniform over its bins, or over its energy "
        "(energy: quiet bands are split less finely).")
    search_limit: int = param(3000, "Mutants the responsibility search may evaluate.")
    stable_rounds: int = param(
        0, "Stop the search after this many iterations in a row that did not shrink the "
        "smallest sufficient prefix (0: run every iteration; see README on when to stop).")
    stability: float = param(
        0.9, "An iteration shrinks the sufficient prefix when it is below this share of the "
        "best so far.")
    confidence_filter: float = param(
        0.5, "A mutant passes when the target stays on top with at least this share of the "
        "original confidence.")
    batch_size: int = param(32, "Waveforms per model call (never changes the result).")
    seed: int = param(0, "Seed of every random choice: same seed, same result.")
    n_fft: int = param(512, "STFT window length in samples (stft domain).")
    hop: int = param(128, "STFT hop in samples (stft domain).")
    freq_range: tuple[float, float] | None = param(
        None, "Search only LOW:HIGH Hz; bins outside stay as they are (default: all).",
        parse=parse_range, metavar="LOW:HIGH")
    output_activation: str = param(
        "auto", "How scores become probabilities: auto, softmax, sigmoid or none.",
        flag="activation")
    search: str = param("bracket", "Extraction search: bracket or linear.")
    chunk: int = param(64, "Step of the linear extraction search, in bins.")
    complete_tolerance: float = param(
        0.02, "The complete set recovers the original confidence to within this much.")
    necessary_rule: str = param(
        "class", "Removing a necessary set must change the top class (class), or only drop "
        "the confidence below the filter (confidence).")
    dense_limit: int = param(
        64, "Prefix sizes up to this are all tested, so a smallest size within it is exact.")
    minimal_budget: int = param(
        500, "Mutants spent shrinking each set to a subset-minimal one (0: do not shrink).")
    multiple: int = param(
        1, "Look for up to this many sufficient sets, each minimal and verified, disjoint by "
        "default: how many independent reasons the model has (1: only the first).")
    max_overlap: float = param(
        0.0, "Share of an earlier set's features a later set may reuse (0: disjoint sets).")
    multiple_budget: int = param(
        3000, "Mutants the search for the sufficient sets after the first may evaluate.")

    def __post_init__(self) -> None:
        check_positive(self, "iterations", "max_depth", "min_box_size", "search_limit",
                  "batch_size", "chunk", "n_fft", "hop", "dense_limit", "multiple",
                  "multiple_budget")
        check_choice(self, "necessary_rule", NECESSARY_RULES)
        if (not isinstance(self.minimal_budget, int) or isinstance(self.minimal_budget, bool)
                or self.minimal_budget < 0):
            raise InputError("minimal_budget must be a non-negative integer, got "
                             f"{self.minimal_budget!r}")
        if self.hop > self.n_fft // 2:
            raise InputError(f"hop ({self.hop}) must be at most n_fft/2 ({self.n_fft // 2}) "
                             "for the inverse STFT to be exact")
        check_choice(self, "domain", DOMAINS)
        check_choice(self, "output_activation", ACTIVATIONS)
        check_choice(self, "search", SEARCHES)
        check_choice(self, "cuts", CUTS)
        check_unit_interval(self, "confidence_filter", closed=True)
        if not (isinstance(self.stability, (int, float)) and 0.0 < self.stability <= 1.0):
            raise InputError(f"stability must be in (0, 1], got {self.stability!r}")
        check_unit_interval(self, "complete_tolerance", closed=False)
        check_unit_interval(self, "max_overlap", closed=False)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.freq_range is not None:
            lo, hi = (float(v) for v in self.freq_range)
            if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 <= lo < hi):
                raise InputError("freq_range must be two finite frequencies 0 <= low < high "
                                 f"in Hz, got {lo:g}, {hi:g}")
            object.__setattr__(self, "freq_range", (lo, hi))


@dataclass(frozen=True)
class AttackConfig(Checked):
    """Parameters of the k-coefficient attacks (each field's help says what it does).

    ``modes`` (``mode="gain"`` names one) says how the ``k`` coefficients change, one attack
    per mode: ``remove`` (to zero), ``attenuate`` / ``amplify`` (times ``factor``, below /
    above 1), ``set`` (each to magnitude ``level`` times the clip's largest coefficient
    magnitude in the attacked domain, phase kept) and ``gain`` (the smallest common gain,
    cut or boost, that flips the class: :mod:`freqrex.gain_search`, with ``gain_points``,
    ``gain_max_db`` and ``gain_tolerance_db``). ``to`` makes the attack targeted: rank by
    that class's responsibility, succeed when it is on top. ``mask_offset_db`` sets the
    perceptual proxy's masking threshold (:mod:`freqrex.perception`); ``domains`` are the
    feature spaces ``freqrex attack`` and ``freqrex evaluate`` attack.
    """

    ks: tuple[int, ...] = param(DEFAULT_KS, "Numbers of coefficients to change, e.g. 1,2,5,10.",
                                parse=parse_ints, metavar="K,K,...")
    modes: tuple[str, ...] = param(
        ("remove",), "How the coefficients change: remove, attenuate / amplify (by factor), "
        "set (to level), gain (smallest flipping gain); several: remove,gain.", flag="mode",
        aliases=("modes",), parse=parse_names, metavar="MODE,...")
    factor: float = param(0.1, "Gain of attenuate (in [0, 1)) or amplify (above 1).")
    level: float = param(0.5, "set: magnitude of each changed coefficient, as a share of "
                         "the clip's largest coefficient magnitude in the domain.")
    gain_points: int = param(12, "gain: gains per direction in the first batch, and per "
                             "bracket in each refining batch.")
    gain_max_db: float = param(40.0, "gain: largest cut and boost tried first, in dB "
                               "(removal is tried too).")
    gain_tolerance_db: float = param(0.1, "gain: refine the smallest flipping gain to "
                                     "within this many dB.")
    mask_offset_db: float = param(12.0, "Masking threshold: the clip's own power in each "
                                  "Bark band and frame, lowered by this many dB.")
    to: int | str | None = param(
        None, "Targeted attack: rank by this class's responsibility and succeed when it is "
        "on top (label or index; default: untargeted).", parse=parse_target, metavar="CLASS")
    domains: tuple[str, ...] = param(
        DOMAINS, "Domains to attack: fft, stft, or fft,stft (also: both).", aliases=("domain",),
        parse=parse_names, metavar="fft,stft")
    mode: InitVar[str | None] = None  # one mode by name: AttackConfig(mode="gain")

    def __post_init__(self, mode: str | None) -> None:
        ks = tuple(self.ks) if not isinstance(self.ks, int) else (self.ks,)
        if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
            raise InputError(f"ks must be positive whole numbers, got {self.ks!r}")
        object.__setattr__(self, "ks", tuple(sorted(set(ks))))
        modes = mode if mode is not None else self.modes
        modes = tuple(dict.fromkeys((modes,) if isinstance(modes, str) else modes))
        bad = [m for m in modes if m not in ATTACK_MODES]
        if not modes or bad:
            raise InputError(f"mode must be one or more of {', '.join(ATTACK_MODES)}; got "
                             f"{', '.join(map(str, bad)) or 'none'}")
        object.__setattr__(self, "modes", modes)
        _check_factor(self.factor, modes)
        check_above(self, "level", 0.0)
        check_above(self, "gain_max_db", 0.0)
        check_above(self, "gain_tolerance_db", 0.0)
        check_positive(self, "gain_points")
        check_above(self, "mask_offset_db", -math.inf)
        names = (self.domains,) if isinstance(self.domains, str) else tuple(self.domains)
        names = tuple(dict.fromkeys(names))
        bad = [n for n in names if n not in DOMAINS]
        if not names or bad:
            raise InputError(f"domains must be fft, stft or both; got {self.domains!r}")
        object.__setattr__(self, "domains", names)

    @classmethod
    def names(cls) -> list[str]:
        return [*super().names(), "mode"]

    def gain(self, mode: str) -> float | None:
        """What a coefficient changed by ``mode`` is multiplied by (None: set and gain,
        whose gains are per coefficient or searched)."""
        return {"remove": 0.0, "attenuate": float(self.factor),
                "amplify": float(self.factor)}.get(mode)


def _check_factor(factor: Any, modes: tuple[str, ...]) -> None:
    ok = isinstance(factor, (int, float)) and not isinstance(factor, bool) and math.isfinite(
        factor)
    if not ok:
        raise InputError(f"factor must be a number, got {factor!r}")
    if "attenuate" in modes and not 0.0 <= factor < 1.0:
        raise InputError(f"factor must be in [0, 1) to attenuate, got {factor!r}")
    if "amplify" in modes and not factor > 1.0:
        raise InputError(f"factor must be above 1 to amplify (e.g. 2), got {factor!r}")


@dataclass(frozen=True)
class ModelConfig(Checked):
    """How a model file is opened, for models whose metadata lacks something.

    Parameters
    ----------
    sample_rate : int, optional
        The model's sample rate, when its metadata has none.
    labels : path, optional
        Class names: a file with one per line, or a JSON list.
    provider : str
        ONNX Runtime execution provider: ``auto`` (CUDA when it really starts), ``cpu``
        or ``cuda``.
    threads : int, optional
        Threads per model call (default: ONNX Runtime's choice, 1 per Dask worker).
    sessions : int, optional
        ONNX Runtime sessions run concurrently on parts of each batch, one thread each
        (``1``: one session using ``threads``; default: measured at the first calls, one
        session or one per core, whichever scores more waveforms per second).
    max_memory : int or str, optional
        Memory budget of a model call (the model's activations and its input batch), in
        bytes or as text (``"4GiB"``, ``"500MB"``); default min(2 GiB, 25% of the RAM).
        It changes how calls are batched, never the result.
    """

    sample_rate: int | None = param(None, "The model's sample rate in Hz, when its metadata "
                                    "has none (default: the metadata's).", metavar="HZ")
    labels: Path | None = param(None, "Class names, when the model's metadata has none: one "
                                "per line or a JSON list (default: the metadata's).", parse=Path,
                                metavar="FILE")
    provider: str = param("auto", "Execution provider: auto, cpu or cuda.")
    threads: int | None = param(None, "Threads per model call (default: ONNX Runtime's "
                                "choice; 1 per Dask worker).", metavar="N")
    sessions: int | None = param(
        None, "ONNX Runtime sessions run at once on parts of each batch (default: measured "
        "at the first calls, 1 or one per core).", metavar="N")
    max_memory: int | None = param(
        None, "Memory budget of a model call (model + input batch), e.g. 4GiB or 500MB "
        "(default: min(2 GiB, 25% of RAM)).", parse=lambda text: parse_memory(text),
        metavar="BYTES")

    def __post_init__(self) -> None:
        check_choice(self, "provider", PROVIDERS)
        for name in ("sample_rate", "threads", "sessions"):
            if getattr(self, name) is not None:
                check_positive(self, name)
        if self.max_memory is not None:
            object.__setattr__(self, "max_memory", parse_memory(self.max_memory))



