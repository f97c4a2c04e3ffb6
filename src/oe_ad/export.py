"""Export a trained job for use without oe_ad: ``oe-ad-export MODEL --format torchscript|onnx [-o OUT]``.

``MODEL`` is a job's ``model.pt`` (or its job folder). The export is ONE file that maps a batch of images at the
job's input size to anomaly scores (larger = more anomalous), the job's preprocessing inside (to [0, 1], the
centre crop, the normalisation): a TorchScript module (``model.torchscript.pt``, run by ``torch.jit.load``) or
an ONNX graph (``model.onnx``, run by ``onnxruntime``). ``--input uint8`` (default) takes uint8 ``(N, H, W, 3)``
batches as images decode (PIL, OpenCV after BGR->RGB, numpy); ``--input float`` float32 ``(N, 3, H, W)`` in [0, 1].
Beside it, ``<file>.json`` says what a user needs to score correctly: method, normal classes, image size and
layout, score thresholds (percentiles of the normal training images' scores), versions and the config hash.
Its scores equal ``oe-ad-predict``'s on the same images (tests/test_export.py; docs/export.md).

Only argparse is imported before the command line is parsed: ``--help`` answers at once.
"""

import json
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

from .cli.args import ArgumentParser, show_progress_and_warnings
from .errors import OEADError

FORMATS = {"torchscript": ".torchscript.pt", "onnx": ".onnx"}
INPUTS = {
    "uint8": {"dtype": "uint8", "layout": "NHWC", "range": [0, 255]},
    "float": {"dtype": "float32", "layout": "NCHW", "range": [0.0, 1.0]},
}
ONNX_OPSET = 18
EXAMPLES = """examples:
  oe-ad-export JOB --format onnx                     JOB/model.onnx and JOB/model.onnx.json
  oe-ad-export JOB --format torchscript -o det.pt    det.pt and det.pt.json
  oe-ad-export JOB --format onnx --input float       float32 (N, 3, H, W) in [0, 1] instead of uint8 (N, H, W, 3)
(JOB: a job folder, e.g. runs/quickstart/bce/<overrides>, or its model.pt; docs/export.md scores the files)"""


def parse_args(argv: list[str]) -> Namespace:
    from argparse import RawDescriptionHelpFormatter

    ap = ArgumentParser(
        prog="oe-ad-export",
        description="Export a trained job's model.pt to one TorchScript or ONNX file that maps images to anomaly\n"
        "scores (preprocessing inside), with a JSON sidecar (method, classes, size, thresholds, versions).",
        epilog=EXAMPLES,
        formatter_class=RawDescriptionHelpFormatter,
    )
    ap.add_argument("model", type=Path, metavar="MODEL", help="a job's model.pt, or its job folder")
    ap.add_argument("--format", required=True, choices=sorted(FORMATS), help="torchscript or onnx")
    ap.add_argument(
        "--input",
        default="uint8",
        choices=sorted(INPUTS),
        help="what the file takes: uint8 (N, H, W, 3) in [0, 255] (default), or float32 (N, 3, H, W) in [0, 1]",
    )
    ap.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="the file to write (default: model.torchscript.pt or model.onnx beside MODEL); FILE.json beside it",
    )
    args = ap.parse_args(argv)
    if args.output is not None and args.output.is_dir():
        ap.error(f"--output {args.output}: is a directory (give a file name, e.g. {args.output}/model.onnx)")
    return args


def default_output(model_path: Path, fmt: str) -> Path:
    """``model.onnx`` / ``model.torchscript.pt`` in the job folder of ``model_path``."""
    folder = model_path if model_path.is_dir() else model_path.parent
    return folder / f"model{FORMATS[fmt]}"


# -- the module that is exported -------------------------------------------------------------------------------
def score_module(model: Any, input_kind: str) -> Any:
    """A plain ``nn.Module`` (CPU, eval) computing ``model.score`` of a batch at ``model.input_size``: the job's test
    transform (to [0, 1], centre crop, mean/std), the method's network and its score, as float32."""
    import torch

    from .data.augment import center_crop

    class Scorer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.method = model.method.cpu().eval()
            aug = model.augmenter
            self.register_buffer("mean", aug.mean.detach().cpu().float().view(1, 3, 1, 1).clone())
            self.register_buffer("std", aug.std.detach().cpu().float().view(1, 3, 1, 1).clone())
            self.crop = int(aug.crop)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x = images.permute(0, 3, 1, 2).float() / 255 if input_kind == "uint8" else images
            x = (center_crop(x, self.crop) - self.mean) / self.std
            return self.method.score(self.method(x)).float()

    return Scorer().eval().requires_grad_(False)  # a scorer: its outputs need no graph


def example_input(kind: str, size: int, n: int = 2) -> Any:
    import torch

    g = torch.Generator().manual_seed(0)
    if kind == "uint8":
        return torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=g)
    return torch.rand(n, 3, size, size, generator=g)


def refuse_untraceable(model: Any, fmt: str, error: BaseException) -> OEADError:
    """One line: which model could not be exported to ``fmt``, and the exporter's first line."""
    method = model.config["method"]["name"]
    net = model.config.get("net", {}).get("_target_", "?")
    reason = (str(error).strip().splitlines() or [error.__class__.__name__])[0][:240]
    return OEADError(
        f"checkpoint={model.path}: the {method} model ({net}) cannot be exported to {fmt}: its network does not trace "
        f"({error.__class__.__name__}: {reason}); score it with oe-ad-predict or oe_ad.inference instead"
    )


def export_torchscript(module: Any, example: Any, out: Path) -> None:
    """``torch.jit.trace`` of ``module`` (the batch size stays free: checked on a second one), saved atomically."""
    import warnings

    import torch

    from .atomic import atomic_open

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # checked below instead: a second batch size
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.9+ deprecates TorchScript (docs/export.md)
        traced = torch.jit.trace(module, (example,), check_trace=False)
        other = torch.cat([example, example[:1]])
        if not torch.allclose(traced(other), module(other), rtol=1e-5, atol=1e-5):
            raise RuntimeError("the traced module does not generalise to another batch size")
        with atomic_open(out, "wb") as fh:
            torch.jit.save(traced, fh)


def export_onnx(module: Any, example: Any, out: Path) -> None:
    """``torch.onnx.export`` (the torch.export-based exporter, opset 18) with a free batch dimension, as one file
    (weights inside), written atomically."""
    import importlib.util
    import os
    import warnings

    import torch

    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise OEADError(
            f"--format onnx needs the {' and '.join(missing)} package(s): pip install -c requirements.lock "
            "'oe_ad[export]' (or .[dev] in a checkout)"
        )
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own notes; the tests check the scores instead
        program = torch.onnx.export(
            module,
            (example,),
            dynamo=True,
            input_names=["images"],
            output_names=["scores"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            opset_version=ONNX_OPSET,
            verbose=False,
        )
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        program.save(str(tmp), external_data=False)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


# -- the sidecar -------------------------------------------------------------------------------------------------
def sidecar(model: Any, fmt: str, input_kind: str, file: Path) -> dict[str, Any]:
    """What a user needs beside the exported file to score correctly."""
    import torch

    from .atomic import file_sha256
    from .job.records import config_hash
    from .version import package_version

    size = model.input_size
    shape = ["N", size, size, 3] if input_kind == "uint8" else ["N", 3, size, size]
    stats = model.normal_scores or {}
    return {
        "format": fmt,
        "file": file.name,
        "file_sha256": file_sha256(file),
        "method": model.config["method"]["name"],
        "normal_classes": model.normal_classes,
        "classes": model.payload.get("classes"),
        "input": {**INPUTS[input_kind], "shape": shape, "channels": "RGB", "name": "images"},
        "image_size": size,
        "crop": int(model.payload["preprocessing"]["image_size"]),
        "normalisation": {"mean": model.payload["preprocessing"]["mean"], "std": model.payload["preprocessing"]["std"]},
        "output": {"name": "scores", "shape": ["N"], "dtype": "float32", "meaning": model.score_scale},
        "larger_is_anomalous": True,
        "thresholds": {
            "percentiles": stats.get("percentiles"),
            "what": "percentiles of the normal training images' scores: score > the P-th flags about (100 - P)% "
            "of normal images anomalous",
            "normal_training_images": stats.get("n"),
        },
        "versions": {"oe_ad": package_version(), "torch": torch.__version__},
        "config_hash": model.payload.get("config_hash") or config_hash(model.config),
        "model": str(model.path.resolve()),
        "model_sha256": file_sha256(model.path),
    }


def export(
    checkpoint: str | Path, fmt: str, output: str | Path | None = None, input_kind: str = "uint8"
) -> tuple[Path, Path]:
    """Export ``checkpoint`` (a ``model.pt`` or its job folder) to ``fmt``; (the file, its JSON sidecar)."""
    from .inference import load_model
    from .job.records import write_text_atomic

    if fmt not in FORMATS:
        raise OEADError(f"--format {fmt}: must be one of {', '.join(sorted(FORMATS))}")
    if input_kind not in INPUTS:
        raise OEADError(f"--input {input_kind}: must be one of {', '.join(sorted(INPUTS))}")
    model = load_model(checkpoint, "cpu")
    out = Path(output) if output is not None else default_output(Path(checkpoint), fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    module = score_module(model, input_kind)
    example = example_input(input_kind, model.input_size)
    # a LightningModule outside a Trainer: the flag Lightning's own to_torchscript/to_onnx set, so that the
    # exporters' look at every attribute does not raise on `.trainer`
    model.method._jit_is_scripting = True
    try:
        (export_torchscript if fmt == "torchscript" else export_onnx)(module, example, out)
    except OEADError:
        raise
    except Exception as e:
        raise refuse_untraceable(model, fmt, e) from None
    finally:
        model.method._jit_is_scripting = False
    side = out.with_name(out.name + ".json")
    write_text_atomic(side, json.dumps(sidecar(model, fmt, input_kind, out), indent=2) + "\n")
    return out, side


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        show_progress_and_warnings()
        out, side = export(args.model, args.format, args.output, args.input)
    except OEADError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    meta = json.loads(side.read_text())
    shape = "x".join(str(d) for d in meta["input"]["shape"])
    normal = ", ".join(meta["normal_classes"] or ["?"])
    print(
        f"{meta['method']} ({normal} normal): {meta['input']['dtype']} {shape} RGB images -> scores, larger = more "
        "anomalous"
    )
    print(f"-> {out}\n-> {side} (preprocessing, classes, thresholds, versions)")


if __name__ == "__main__":
    main()
