"""One set of parameters, validated once, shared by the CLI, the Python API and the records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from freqrex.errors import FreqrexError

DOMAINS = ("fft", "stft")
ACTIVATIONS = ("auto", "softmax", "sigmoid", "none")
SEARCHES = ("bracket", "linear")
DISTRIBUTIONS = ("uniform",)
BASELINES = ("zero",)


@dataclass(frozen=True)
class Config:
    """Parameters of an explanation run (names follow METHOD.md).

    Parameters
    ----------
    iterations : int
        Independent passes of the responsibility search, each with fresh random cuts.
    max_depth : int
        How many times a box may be split below the root.
    min_box_size : int
        Smallest child a split may produce, in bins.
    search_limit : int
        Model evaluations (mutants) the responsibility search may spend over all iterations.
    confidence_filter : float
        A mutant passes when its class is the target and its target probability is at least
        ``confidence_filter`` times the original's.
    batch_size : int
        Waveforms per model call.
    seed : int
        Seed of every random choice; the same seed gives the same result, bit for bit.
    domain : str
        Feature space: ``"fft"`` (rfft bins) or ``"stft"`` (time-frequency cells).
    n_fft, hop : int
        STFT window length and hop, in samples (stft domain).
    freq_range : tuple of float, optional
        Limit the search to bins within this Hz range; bins outside are kept as they are.
    baseline : str
        What replaces a removed coefficient: ``"zero"``.
    target : int or str, optional
        Class to explain (index or label); the model's top class when omitted.
    output_activation : str
        How model outputs become probabilities: auto, softmax, sigmoid or none.
    search : str
        Extraction search: ``"bracket"`` (batched geometric bracketing) or ``"linear"``.
    chunk : int
        Step, in bins, of the linear extraction search.
    complete_tolerance : float
        The complete set recovers the original confidence to within this (absolute) amount.
    distribution : str
        How split points are drawn: ``"uniform"``.
    """

    iterations: int = 10
    max_depth: int = 12
    min_box_size: int = 1
    search_limit: int = 3000
    confidence_filter: float = 0.5
    batch_size: int = 32
    seed: int = 0
    domain: str = "fft"
    n_fft: int = 512
    hop: int = 128
    freq_range: tuple[float, float] | None = None
    baseline: str = "zero"
    target: int | str | None = None
    output_activation: str = "auto"
    search: str = "bracket"
    chunk: int = 64
    complete_tolerance: float = 0.02
    distribution: str = "uniform"

    def __post_init__(self) -> None:
        _positive(self, "iterations", "max_depth", "min_box_size", "search_limit",
                  "batch_size", "chunk", "n_fft", "hop")
        if self.hop > self.n_fft // 2:
            raise FreqrexError(f"hop ({self.hop}) must be at most n_fft/2 ({self.n_fft // 2}) "
                               "for the inverse STFT to be exact")
        _choice(self, "domain", DOMAINS)
        _choice(self, "output_activation", ACTIVATIONS)
        _choice(self, "search", SEARCHES)
        _choice(self, "distribution", DISTRIBUTIONS)
        _choice(self, "baseline", BASELINES)
        if not 0.0 <= self.confidence_filter <= 1.0:
            raise FreqrexError(
                f"confidence_filter must be between 0 and 1, got {self.confidence_filter}")
        if not 0.0 <= self.complete_tolerance < 1.0:
            raise FreqrexError(
                f"complete_tolerance must be in [0, 1), got {self.complete_tolerance}")
        if self.seed < 0:
            raise FreqrexError(f"seed must be a non-negative integer, got {self.seed}")
        if self.freq_range is not None:
            lo, hi = (float(v) for v in self.freq_range)
            if not 0.0 <= lo < hi:
                raise FreqrexError(
                    f"freq_range must be two frequencies 0 <= low < high in Hz, got {lo}, {hi}")
            object.__setattr__(self, "freq_range", (lo, hi))

    def replace(self, **changes) -> Config:
        """Return a copy with some parameters changed (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain dict for JSON records."""
        return asdict(self)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def _positive(config: Config, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise FreqrexError(f"{name} must be a positive integer, got {value!r}")


def _choice(config: Config, name: str, allowed: tuple[str, ...]) -> None:
    value = getattr(config, name)
    if value not in allowed:
        raise FreqrexError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
