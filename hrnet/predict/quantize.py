"""Lower-precision packages: ``package.precision`` int8 (ONNX, static quantization) or bf16 (the
torch program under CPU autocast).

**int8.** The fp32 ONNX graph is written and checked first, as for an fp32 package; then
onnxruntime's static quantization rewrites it in QDQ form (QuantizeLinear / DequantizeLinear
pairs around each quantized operator, which onnxruntime fuses into int8 kernels): weights int8
per output channel, activations uint8 per tensor (U8S8, onnxruntime's recommended x86 pairing),
activation ranges calibrated (min/max) on crops of the train split. Operators the quantizer
leaves alone run in fp32; package.json counts them (``fp32_ops``) and lists what runs in fp32
outside the graph (``fp32_outside_graph``): heatmap decoding, logit upsampling, and for detection
the head graphs (kept fp32: small, and decoded into boxes) and torchvision's box decoding and NMS.

**bf16.** The torch package (``model.pt2``) is run under ``torch.autocast("cpu", bfloat16)``:
convolutions and matrix multiplies in bf16, the rest in fp32. On a CPU without native bf16
(AVX512_BF16 or AMX) this is usually slower than fp32, so it is measured at packaging time and
refused when it is slower there.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hrnet.errors import UserError
from hrnet.predict.cpu_features import NATIVE_BF16, cpu_features, native_bf16

PRECISIONS = ("fp32", "bf16", "int8")


class PrecisionError(UserError, RuntimeError):
    """A precision this package or this CPU cannot give (one line, exit code 2)."""


def plan_precision(
    precision: str,
    fmt: str,
    model: torch.nn.Module,
    meta: dict[str, Any],
    check_images: torch.Tensor | None,
    calibration: torch.Tensor | list | None,
    inference: Any,
) -> tuple[str, dict[str, Any]]:
    """Before anything is exported: the program format ``precision`` needs (int8 is always ONNX,
    bf16 always the torch program) and the package.json fields known already (bf16: its timing);
    raises :class:`PrecisionError` (one line) for what cannot be packaged, so no time is spent
    exporting first."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"package.precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "int8":
        if calibration is None or not len(calibration):
            raise PrecisionError("package.precision=int8 needs package.calibration_images >= 1 train crops")
        return "onnx", {}
    if precision == "fp32":
        return fmt, {}
    if fmt == "onnx":
        raise PrecisionError(
            "package.precision=bf16 with package.format=onnx: onnxruntime has no bf16 CPU "
            "convolutions; bf16 packages are torch programs (package.format=torch_export)"
        )
    if inference.bf16_refusal:  # the task's inference says why its packages cannot run in bf16
        raise PrecisionError(f"package.precision=bf16: {inference.bf16_refusal}")
    from hrnet.predict.export import fold_batchnorm

    width, height = meta["input_size"]
    batch = check_images if check_images is not None else torch.randn(2, 3, height, width)
    return fmt, check_bf16(fold_batchnorm(model), batch)


def calibration_reader(path: Path, images: torch.Tensor | np.ndarray | list, batch_size: int = 8) -> Any:
    """An onnxruntime ``CalibrationDataReader`` feeding ``images`` (normalised network inputs: one
    (N, 3, H, W) batch, or a list of (3, H, W) images of the sizes a dynamic graph takes) to the
    graph at ``path``, ``batch_size`` at a time."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader

    name = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    if isinstance(images, list):
        batches = [np.asarray(image, np.float32)[None] for image in images]
    else:
        array = np.asarray(images, np.float32)
        batches = [array[i : i + batch_size] for i in range(0, len(array), batch_size)]

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.items: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.items, None)
            return None if batch is None else {name: batch}

        def rewind(self) -> None:
            self.items = iter(batches)

    return Batches()


def fp32_ops(path: Path) -> dict[str, int]:
    """Operator types (with counts) of the QDQ graph at ``path`` that run in fp32: no input of
    theirs comes from a DequantizeLinear."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    skip = {"QuantizeLinear", "DequantizeLinear", "Constant", "Shape", "Gather", "Unsqueeze"}  # no compute
    counts = Counter(
        node.op_type for node in graph.node if node.op_type not in skip and not dequantized & set(node.input)
    )
    return dict(sorted(counts.items()))


def quantize_int8(path: Path, calibration: torch.Tensor | np.ndarray | list) -> dict[str, Any]:
    """Replaces the fp32 ONNX graph at ``path`` by its int8 QDQ form calibrated on ``calibration``;
    returns the package.json fields describing it."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = path.with_name(f".{path.stem}.pre.onnx")
    quantized = path.with_name(f".{path.stem}.int8.onnx")
    try:
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(quantized),
            calibration_reader(prepared, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        quantized.replace(path)
    finally:
        prepared.unlink(missing_ok=True)
        quantized.unlink(missing_ok=True)
    return {
        "precision": "int8",
        "quantization": {
            "method": "onnxruntime quantize_static, QDQ",
            "weights": "int8, per output channel",
            "activations": "uint8, per tensor, min/max calibration",
            "calibration_images": len(calibration),
        },
        "fp32_ops": fp32_ops(path),
    }


def timed(run: Callable[[], Any], repeats: int = 3) -> float:
    """Median seconds of ``run()`` after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def bf16_speed(model: torch.nn.Module, batch: torch.Tensor, repeats: int = 3) -> dict[str, float]:
    """Seconds per batch of ``model`` in fp32 and under bf16 autocast, measured alternately."""
    model = model.eval()

    def bf16() -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(batch)

    fp32_s, bf16_s = [], []
    for _ in range(repeats):
        fp32_s.append(timed(lambda: model(batch), 1))
        bf16_s.append(timed(bf16, 1))
    fp32_t, bf16_t = statistics.median(fp32_s), statistics.median(bf16_s)
    return {"fp32_s": fp32_t, "bf16_s": bf16_t, "bf16_speedup": fp32_t / bf16_t}


def check_bf16(model: torch.nn.Module, batch: torch.Tensor) -> dict[str, Any]:
    """The package.json fields of a bf16 package; raises :class:`PrecisionError` (one line) when
    this CPU lacks native bf16 and bf16 measured slower than fp32 on ``batch``."""
    features = cpu_features()
    speed = bf16_speed(model, batch)
    if not native_bf16(features) and speed["bf16_speedup"] < 1.0:
        raise PrecisionError(
            f"package.precision=bf16: this CPU has no {' or '.join(NATIVE_BF16)} (no native bf16), "
            f"and bf16 ran {1 / speed['bf16_speedup']:.1f}x slower than fp32 here; use fp32 or int8"
        )
    return {
        "precision": "bf16",
        "autocast": "bfloat16 (convolutions and matrix multiplies; the rest in fp32)",
        "bf16_speed": {**speed, "cpu_features": features},
    }


def apply_precision(
    tmp: Path,
    model: torch.nn.Module,
    meta: dict[str, Any],
    fields: dict[str, Any],
    precision: str,
    check_images: torch.Tensor | None,
    calibration: torch.Tensor | list | None,
    planned: dict[str, Any],
    inference: Any,
) -> dict[str, Any]:
    """Turns the fp32 program just written into ``tmp`` (described by ``fields``) into ``precision``
    (``planned``: what :func:`plan_precision` returned); returns the updated package.json fields,
    with ``precision_check``: the largest difference of
    the packaged outputs from the fp32 PyTorch model on ``check_images`` (recorded, not held to
    ``package.tolerance``: the package stage's metric drop is the guard)."""
    from hrnet.predict.export import max_abs_diff, run_onnx
    from hrnet.predict.runtime import TorchRunner

    if precision == "fp32":
        return {**fields, "precision": "fp32"}
    if precision == "int8":
        graph = tmp / fields["program"]  # detection: the backbone + neck graph, most of the work
        added = quantize_int8(graph, calibration)
        added["fp32_outside_graph"] = list(inference.fp32_outside_graph)
        fields = {**fields, **added, "runtime": f"{fields['runtime']}, int8"}
        if check_images is not None and inference.program_is_whole_model:
            diff = max_abs_diff(model, run_onnx(graph, check_images.numpy()), check_images)
            fields["precision_check"] = {"against": "the fp32 PyTorch model", "max_abs_diff": diff}
        return fields
    fields = {**fields, **planned}
    if check_images is not None:
        program = torch.export.load(tmp / fields["program"]).module()
        outputs = [TorchRunner(program, autocast=True)(check_images)]
        diff = max_abs_diff(model, outputs, check_images)
        fields["precision_check"] = {"against": "the fp32 PyTorch model", "max_abs_diff": diff}
    return fields
