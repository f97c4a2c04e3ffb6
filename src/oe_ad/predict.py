"""Score new images with a trained job: ``oe-ad-predict CHECKPOINT INPUT --output SCORES.csv [--threshold T]``.

``CHECKPOINT`` is a job's ``model.pt`` (or its job folder); ``INPUT`` a folder of images (searched
recursively) or an ``(N, H, W, 3)`` uint8 ``.npy``. The CSV has one row per image: ``file``, ``score``
(larger = more anomalous) and, with ``--threshold T``, ``label`` (``anomalous`` if score > T, else ``normal``).
Images are decoded, resized and normalised exactly as the job's training data were.
"""

import csv
import sys
from argparse import Namespace
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import Tensor

from .atomic import atomic_open
from .checkpointing import load_weights, read_model_file
from .cliargs import ArgumentParser
from .data.augment import Augmenter
from .data.images import decode, list_images
from .data.npy import read_npy_images
from .data.stream import fit_size
from .errors import OEADError


def parse_args(argv: list[str]) -> Namespace:
    """The command line (argparse, as ``oe-ad-report``); a bad or missing option exits 2 with its usage."""
    ap = ArgumentParser(
        prog="oe-ad-predict",
        description="Score new images with a trained job's model.pt; one CSV row per image (larger = more anomalous).",
    )
    ap.add_argument("checkpoint", type=Path, help="a job's model.pt, or its job folder")
    ap.add_argument("input", type=Path, help="a folder of images (searched recursively) or an (N, H, W, 3) uint8 .npy")
    ap.add_argument("-o", "--output", type=Path, required=True, help="the CSV to write (file, score[, label])")
    ap.add_argument("--threshold", type=float, help="add a label column: anomalous if score > THRESHOLD")
    ap.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default: 256)")
    ap.add_argument("--device", default="auto", help="auto (the GPU when there is one), cpu, cuda or cuda:N")
    args = ap.parse_args(argv)
    if args.batch_size < 1:
        ap.error(f"--batch-size {args.batch_size}: must be >= 1")
    if args.output.is_dir():
        ap.error(f"--output {args.output}: is a directory (give a file name, e.g. {args.output}/scores.csv)")
    return args


def load_detector(checkpoint: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained method in eval mode and its preprocessing (normalisation, sizes)."""
    from .factory import build_method  # the same construction as training, from the job's own config
    from .methods.base import Facts

    payload = read_model_file(checkpoint)
    method = build_method(OmegaConf.create(payload["config"]))
    # prepared as training prepared it (e.g. CLIP's prompts); data-derived state comes with the weights
    method.prepare(Facts(**payload.get("facts", {"normal_names": []})))
    load_weights(method, payload, checkpoint)
    return method.to(device).eval(), payload["preprocessing"]


def iter_inputs(path: Path, size: int, batch_size: int) -> Iterator[tuple[list[str], Tensor]]:
    """(names, uint8 NCHW batch at the training input size) from a folder of images or a .npy."""
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise OEADError(f"input={path}: no image files found")
        for i in range(0, len(files), batch_size):
            chunk = files[i : i + batch_size]
            arrays = np.stack([decode(f, size) for f in chunk])
            yield [str(f.relative_to(path)) for f in chunk], torch.from_numpy(arrays).permute(0, 3, 1, 2)
    elif path.suffix == ".npy" and path.is_file():
        array = read_npy_images(path, "input")
        for i in range(0, len(array), batch_size):
            x = torch.from_numpy(np.array(array[i : i + batch_size])).permute(0, 3, 1, 2)  # a copy: mmap is read-only
            yield [f"{path.name}[{j}]" for j in range(i, i + len(x))], fit_size(x, (size, size))
    else:
        raise OEADError(f"input={path}: not a folder of images or a .npy file")


@torch.no_grad()
def predict(checkpoint: str | Path, input_path: str | Path, batch_size: int = 256, device: str = "auto"):
    """Anomaly scores of every input image: a list of (name, score)."""
    from .factory import resolve_device

    dev = resolve_device(device)
    method, prep = load_detector(checkpoint, dev)
    augmenter = Augmenter(mean=torch.tensor(prep["mean"]), std=torch.tensor(prep["std"]), crop=prep["image_size"])
    augmenter.to(dev)
    rows = []
    for names, x in iter_inputs(Path(input_path), prep["input_size"], batch_size):
        scores = method.score(method(augmenter.test(x.to(dev)))).float().cpu()
        if not torch.isfinite(scores).all():
            bad = names[int((~torch.isfinite(scores)).nonzero()[0])]
            raise OEADError(
                f"checkpoint={checkpoint}: the model scores {bad} as NaN/inf (broken weights?); nothing written"
            )
        rows += zip(names, scores.tolist())
    return rows


def write_csv(rows: list[tuple[str, float]], output: str | Path, threshold: float | None) -> None:
    parent = Path(output).parent
    if not parent.exists():
        parent.mkdir(parents=True)
        print(f"created the folder {parent} for output={output}")
    with atomic_open(output, "w") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "score"] + ([] if threshold is None else ["label"]))
        for name, score in rows:
            label = [] if threshold is None else ["anomalous" if score > threshold else "normal"]
            w.writerow([name, repr(score), *label])


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        rows = predict(args.checkpoint, args.input, args.batch_size, args.device)
        write_csv(rows, args.output, args.threshold)
    except OEADError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"{len(rows)} images scored -> {args.output}")


if __name__ == "__main__":
    main()
