"""PyTorch modules as models: ``no_grad``, eval mode, batches moved to the module's device.

Importing this module imports torch (``pip install freqrex[torch]``); nothing else in
freqrex does, and :class:`TorchModel` is exported lazily, so ``import freqrex`` stays
cheap without torch installed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from freqrex.errors import InputError, ModelError
from freqrex.model.base import Model

__all__ = ["TorchModel"]


class TorchModel(Model):
    """A :class:`torch.nn.Module` mapping waveforms ``[B, N]`` to scores ``[B, C]``.

    The module is put in eval mode (dropout and batch norm stop depending on the batch)
    and called under :func:`torch.inference_mode`; each chunk is moved to ``device`` and
    the scores come back to the CPU as float64.

    Parameters
    ----------
    module : torch.nn.Module
        The classifier; it receives a float32 tensor ``[B, N]`` (``[B, 1, N]`` with
        ``channel_dim=True``).
    sample_rate : int
        Rate the module expects, in Hz.
    labels : list of str or path, optional
        Class names.
    device : str or torch.device, optional
        Where to run (``"cpu"``, ``"cuda"``, ``"cuda:1"``...); default: where the module's
        parameters are, else the CPU. A CUDA device that is not available is an error.
    activation, batch_size, input_length
        As for :class:`~freqrex.model.CallableModel`.
    channel_dim : bool
        Feed ``[B, 1, N]`` instead of ``[B, N]``.

    Examples
    --------
    >>> model = freqrex.TorchModel(net, sample_rate=16000, labels=["dog", "cat"])  # doctest: +SKIP
    >>> freqrex.explain(model, "clip.wav").sufficient.size  # doctest: +SKIP
    """

    def __init__(
        self,
        module: Any,
        *,
        sample_rate: int | None = None,
        labels: Sequence[str] | str | os.PathLike | None = None,
        device: Any = None,
        activation: str = "auto",
        batch_size: int = 32,
        input_length: int | None = None,
        channel_dim: bool = False,
    ) -> None:
        import torch

        if not isinstance(module, torch.nn.Module):
            raise InputError(f"TorchModel needs a torch.nn.Module, got {type(module).__name__}; "
                             "wrap other callables in freqrex.CallableModel")
        self.device = torch.device(device) if device is not None else _device_of(module)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ModelError(f"device {self.device} was requested but CUDA is not available "
                             "to torch here; use device='cpu'")
        super().__init__(sample_rate=sample_rate, labels=labels, activation=activation,
                         batch_size=batch_size, input_length=input_length,
                         provider=f"torch:{self.device}")
        self.module = module.to(self.device).eval()
        self.channel_dim = bool(channel_dim)
        self._torch = torch
        self._accelerator = self.device.type != "cpu"

    def _warm_up(self, chunk: np.ndarray) -> None:
        if self._accelerator:
            self._forward(chunk)

    def _forward(self, chunk: np.ndarray) -> Any:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(chunk).to(self.device)
            if self.channel_dim:
                x = x[:, None, :]
            out = self.module(x)
            if isinstance(out, (tuple, list)):  # e.g. (logits, embeddings): the scores first
                out = out[0]
            if not isinstance(out, torch.Tensor):
                raise ModelError(f"the module returned {type(out).__name__}, not a tensor of "
                                 "scores [B, C]")
            return out.detach().to("cpu", torch.float64).numpy()


def _device_of(module: Any) -> Any:
    import torch

    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")
