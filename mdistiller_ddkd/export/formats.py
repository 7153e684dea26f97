"""The formats a student is exported to: how each serialises a module (image -> logits, dynamic batch axis)
to bytes with its preprocessing embedded, and how its own runtime loads those bytes back to compute logits.

* ``onnx``: ``torch.onnx.export(dynamo=True)`` (the exporter PyTorch maintains, built on ``torch.export``;
  it needs ``onnxscript``), the preprocessing in the model's ``metadata_props``; run with ONNX Runtime.
* ``pt2``: ``torch.export`` saved with ``torch.export.save`` (the preprocessing as the extra file
  ``preprocessing.json``); run with ``torch.export.load(...).module()``. It takes TorchScript's place:
  ``torch.jit.trace`` / ``script`` are deprecated in PyTorch (they warn "Please switch to torch.compile or
  torch.export"), and ``torch.export`` is the graph capture PyTorch keeps (the ONNX exporter uses it too).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

import torch
from torch import nn

from ..errors import UserError
from ..registry import Registry

Runner = Callable[[torch.Tensor], torch.Tensor]
#: the name of the input and the output of every export
INPUT_NAME, OUTPUT_NAME = "image", "logits"
#: where the preprocessing goes inside a ``.pt2`` archive
PT2_PREPROCESSING = "preprocessing.json"


class ExportUnavailableError(UserError, ImportError):
    """The packages a format needs are not installed; the message says how to install them."""


@dataclass(frozen=True)
class ExportFormat:
    """A format: its file suffix, the modules it needs (and the extra that installs them), how a module
    becomes bytes (``serialize(module, example, preprocessing)``) and how its runtime runs those bytes."""

    name: str
    suffix: str
    modules: Tuple[str, ...]
    extra: str
    serialize: Callable[[nn.Module, torch.Tensor, Dict], bytes]
    load: Callable[[bytes], Runner]
    runtime: str

    def require(self) -> None:
        """``ExportUnavailableError`` (with the install hint) unless every module it needs imports."""
        for module in self.modules:
            try:
                importlib.import_module(module)
            except ImportError:
                raise ExportUnavailableError(
                    f"--format {self.name} needs {', '.join(self.modules)} ({module} is missing): "
                    f"pip install 'mdistiller-ddkd[{self.extra}]'") from None


def _batch_axis() -> Dict[int, object]:
    return {0: torch.export.Dim("batch", min=1)}


def onnx_bytes(module: nn.Module, example: torch.Tensor, preprocessing: Dict) -> bytes:
    """The ONNX model of ``module`` (dynamic batch), ``preprocessing`` in its metadata (JSON values)."""
    import onnx

    with contextlib.redirect_stdout(io.StringIO()):  # the exporter's progress lines
        program = torch.onnx.export(module, (example,), dynamo=True, input_names=[INPUT_NAME],
                                    output_names=[OUTPUT_NAME], dynamic_shapes=(_batch_axis(),), verbose=False)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {k: json.dumps(v) for k, v in preprocessing.items()})
    return proto.SerializeToString()


def onnx_runner(data: bytes) -> Runner:
    """ONNX Runtime (CPU) on the serialised model."""
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])

    def run(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0])

    return run


def pt2_bytes(module: nn.Module, example: torch.Tensor, preprocessing: Dict) -> bytes:
    """The ``torch.export`` program of ``module`` (dynamic batch), ``preprocessing`` as an extra file."""
    program = torch.export.export(module, (example,), dynamic_shapes=(_batch_axis(),))
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={PT2_PREPROCESSING: json.dumps(preprocessing)})
    return buffer.getvalue()


def pt2_runner(data: bytes) -> Runner:
    """``torch.export.load`` on the serialised program."""
    module = torch.export.load(io.BytesIO(data)).module()

    def run(images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(images)

    return run


#: the formats ``ddkd-export --format`` offers (a plugin may register more)
FORMATS: Registry[ExportFormat] = Registry("export format (--format)")
for _format in (
    ExportFormat("onnx", ".onnx", ("onnx", "onnxscript", "onnxruntime"), "export", onnx_bytes, onnx_runner,
                 "ONNX Runtime"),
    ExportFormat("pt2", ".pt2", ("torch.export",), "export", pt2_bytes, pt2_runner, "torch.export.load"),
):
    FORMATS.register(_format.name, _format)
