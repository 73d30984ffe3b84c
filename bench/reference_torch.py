"""The bundled reference classifier as a PyTorch module, for checks on a CUDA device.

The lent GPU machine has PyTorch with CUDA but no ``onnxruntime-gpu`` (and its wheel, ~255 MB,
built for CUDA 12, cannot travel there), so a GPU run of freqrex goes through
:class:`freqrex.TorchModel`. This rebuilds ``scripts/train_reference_model.py``'s
``ReferenceNet`` as exported (batch norm folded into the convolutions) and fills it with the
ONNX file's weights, read as numbers (``onnx.numpy_helper``: nothing is unpickled). The
graph's own constants (hop, padding, log floor) are read from it too, and
:func:`check_against_onnx` compares the module with ONNX Runtime on the bundled clips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from freqrex.examples import long_clip, reference_model


class ReferenceTorch(nn.Module):
    """Log-mel front end, four 3x3 conv + ReLU blocks (the first three max-pooled 2x2),
    mean and max pooling over the map, linear logits: ``[B, N]`` waveforms to ``[B, 6]``."""

    def __init__(self, weights: dict[str, np.ndarray], convs: list[tuple[str, str]], hop: int,
                 pad: int, floor: float) -> None:
        super().__init__()
        t = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
        self.register_buffer("kernel", t["frontend.kernel"])
        self.register_buffer("mel", t["frontend.mel"])
        self.register_buffer("offset", t["frontend.offset"])
        self.register_buffer("scale", t["frontend.scale"])
        self.hop, self.pad, self.floor = hop, pad, floor
        self.convs = nn.ModuleList()
        for weight, bias in convs:   # batch norm folded in: every conv has a bias
            w = t[weight]
            conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=w.shape[2] // 2)
            conv.weight.data, conv.bias.data = w, t[bias]
            self.convs.append(conv)
        self.classifier = nn.Linear(t["classifier.weight"].shape[1],
                                    t["classifier.weight"].shape[0])
        self.classifier.weight.data = t["classifier.weight"]
        self.classifier.bias.data = t["classifier.bias"]

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = F.pad(waveform.unsqueeze(1), (self.pad, self.pad))
        spec = F.conv1d(x, self.kernel, stride=self.hop)
        bins = self.kernel.shape[0] // 2
        power = spec[:, :bins] ** 2 + spec[:, bins:] ** 2
        h = ((torch.log(torch.matmul(self.mel, power) + self.floor) - self.offset)
             * self.scale).unsqueeze(1)
        for i, conv in enumerate(self.convs):
            h = F.relu(conv(h))
            if i < len(self.convs) - 1:
                h = F.max_pool2d(h, 2)
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.classifier(pooled)


def reference_torch(path: str | Path | None = None) -> ReferenceTorch:
    """The bundled model (or an ONNX file exported the same way) as a torch module."""
    proto = onnx.load(str(path or reference_model()))
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    dft, *convs = [n for n in proto.graph.node if n.op_type == "Conv"]   # in graph order
    hop = next(a.ints[0] for a in dft.attribute if a.name == "strides")
    floor = next(_scalar(n) for n in proto.graph.node
                 if n.op_type == "Constant" and _feeds(proto, n, "Add", before="Log"))
    return ReferenceTorch(weights, [(n.input[1], n.input[2]) for n in convs], hop,
                          weights["frontend.kernel"].shape[-1] // 2, floor).eval()


def _scalar(node: onnx.NodeProto) -> float:
    return float(numpy_helper.to_array(node.attribute[0].t))


def _feeds(proto: onnx.ModelProto, const: onnx.NodeProto, op: str, before: str) -> bool:
    """Whether ``const`` is an input of the ``op`` node whose output goes into ``before``."""
    for node in proto.graph.node:
        if node.op_type == op and const.output[0] in node.input:
            return any(n.op_type == before and node.output[0] in n.input
                       for n in proto.graph.node)
    return False


def check_against_onnx(module: nn.Module, device: str = "cpu") -> float:
    """Largest absolute difference of the logits of ``module`` (on ``device``) and ONNX
    Runtime (CPU) on the bundled 4 s clips and the 30 s clip."""
    import onnxruntime as ort

    from freqrex.audio import load_audio
    from freqrex.examples import example_clips

    session = ort.InferenceSession(str(reference_model()), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    clips = list(example_clips()) + [long_clip()]
    worst = 0.0
    module = module.to(device)
    for clip in clips:
        x = load_audio(clip, 16000)[0][None].astype(np.float32)
        want = session.run(None, {name: x})[0]
        with torch.inference_mode():
            got = module(torch.from_numpy(x).to(device)).cpu().numpy()
        worst = max(worst, float(np.abs(got - want).max()))
    return worst
