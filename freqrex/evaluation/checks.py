"""What :func:`freqrex.evaluation.evaluate` checks and settles before any clip: its
parameters, the worker count, the model (opened here once, and identified by its digest)
and the settings stored with the results."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from freqrex.config import AttackConfig, Config, ModelConfig
from freqrex.errors import InputError
from freqrex.evaluation.task import Job, ModelSpec, cached_model, open_model
from freqrex.model import Model

__all__ = ["check_workers", "prepare_model", "settings_of", "split_params"]


def split_params(config: Config, attack: AttackConfig,
                 params: dict[str, Any]) -> tuple[Config, AttackConfig]:
    """Route keyword arguments to the explanation's config or the attack's."""
    ours, theirs = set(Config.names()), set(AttackConfig.names())
    unknown = sorted(set(params) - ours - theirs)
    if unknown:
        hint = (" (model options go in options=ModelConfig(...))"
                if set(unknown) & set(ModelConfig.names()) else "")
        raise InputError(f"unknown parameter(s) {', '.join(unknown)}{hint}; known: "
                         f"{', '.join(Config.names() + AttackConfig.names())}")
    explain = {k: v for k, v in params.items() if k in ours}
    attacks = {k: v for k, v in params.items() if k in theirs}
    return (config.replace(**explain) if explain else config,
            attack.replace(**attacks) if attacks else attack)


def check_workers(workers: int, scheduler: str | None) -> None:
    import numbers

    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 0:
        raise InputError(f"workers must be 0 (serial) or a positive number, got {workers!r}")
    if scheduler is not None and not scheduler.strip():
        raise InputError("scheduler needs an address such as tcp://host:8786")


def prepare_model(model: Any, config: Config, options: ModelConfig, labels: list[str] | None,
                  parallel: bool) -> tuple[Model | None, ModelSpec | None, tuple[str, Any]]:
    """Check the model here, before any clip; return it (serial), its spec and identity.

    The identity (path, sha256 of the file) is stored with the results: a database made with
    one model refuses to be resumed with another.
    """
    from freqrex import examples
    from freqrex.model import as_model

    if model is None or isinstance(model, (str, os.PathLike)):
        path = Path(model) if model is not None else examples.reference_model()
        if options.labels is not None:  # workers may run elsewhere: an absolute path
            options = options.replace(labels=Path(options.labels).resolve())
        spec = ModelSpec(str(path.resolve()), options=options,
                         activation=config.output_activation, batch_size=config.batch_size)
        # Serial runs keep this model for every clip; parallel runs only check it here.
        checked = cached_model(spec) if not parallel else open_model(spec)
        _check_rate(checked, options.sample_rate)
        return (checked if not parallel else None), spec, (spec.path, _sha256(path))
    if parallel:
        raise InputError("Dask workers open the model from its file; give an ONNX path, or "
                         "use workers=0 to evaluate a Python model in this process")
    loaded = as_model(model, sample_rate=options.sample_rate, labels=labels,
                      activation=config.output_activation, batch_size=config.batch_size)
    _check_rate(loaded, options.sample_rate)
    name = getattr(model, "__qualname__", type(model).__name__)
    return loaded, None, (f"python:{name}", None)


def _check_rate(model: Model, sample_rate: int | None) -> None:
    if model.sample_rate is None and sample_rate is None:
        raise InputError("the model declares no sample rate; give sample_rate (in "
                         "options=ModelConfig(sample_rate=...)) with the rate it expects")


def settings_of(job: Job, labels: list[str] | None) -> dict[str, Any]:
    """What the results depend on, as stored in (and compared with) the database."""
    config = job.config.to_dict()
    config.pop("domain")  # every domain of the attack's `domains` is run
    config["freq_range"] = list(config["freq_range"]) if config["freq_range"] else None
    attack = {k: list(v) if isinstance(v, tuple) else v for k, v in job.attack.to_dict().items()}
    return {**config, **attack, "sample_rate": job.sample_rate, "labels": labels,
            "compare": job.compare}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
