"""Score new images with a trained job: ``oe-ad-predict CHECKPOINT INPUT --output SCORES.csv [--threshold T]``.

``CHECKPOINT`` is a job's ``model.pt`` (or its job folder); ``INPUT`` a folder of images (searched
recursively) or an ``(N, H, W, 3)`` uint8 ``.npy``. The CSV has one row per image: ``file``, ``score``
(larger = more anomalous) and, with a threshold, ``label`` (``anomalous`` if score > threshold, else ``normal``).
Images are decoded, resized and normalised exactly as the job's test images were (``oe_ad.inference``).

Only argparse is imported before the command line is parsed: ``--help`` answers at once.
"""

import csv
import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

from .cli.args import ArgumentParser, show_progress_and_warnings
from .errors import OEADError

SCALE_HELP = (
    "Scores are the method's raw anomaly scores, larger = more anomalous; their scale depends on the method "
    "(BCE/focal: the anomaly logit; HSC: the hypersphere distance h(phi(x)) >= 0; Deep SAD/SVDD: the squared "
    "distance to the centre; CLIP: the anomaly prompt's log-odds). The output names it, with percentiles of the "
    "scores of the job's normal training images, and --threshold-percentile uses those."
)


def parse_args(argv: list[str]) -> Namespace:
    """The command line (argparse, as ``oe-ad-report``); a bad or missing option exits 2 with its usage."""
    ap = ArgumentParser(
        prog="oe-ad-predict",
        description="Score new images with a trained job's model.pt; one CSV row per image.",
        epilog=SCALE_HELP,
    )
    ap.add_argument("checkpoint", type=Path, help="a job's model.pt, or its job folder")
    ap.add_argument("input", type=Path, help="a folder of images (searched recursively) or an (N, H, W, 3) uint8 .npy")
    ap.add_argument(
        "-o", "--output", type=Path, required=True, metavar="CSV", help="the CSV to write (file, score[, label])"
    )
    which = ap.add_mutually_exclusive_group()
    which.add_argument(
        "--threshold", type=float, metavar="VALUE", help="add a label column: anomalous if score > VALUE (raw score)"
    )
    which.add_argument(
        "--threshold-percentile",
        type=float,
        metavar="P",
        help="add a label column with the P-th percentile of the normal training images' scores as threshold "
        "(stored in model.pt: 50, 90, 95, 99, 99.9); e.g. 99 labels about 1%% of normal images anomalous",
    )
    ap.add_argument("--batch-size", type=int, default=256, metavar="N", help="images per forward pass (default: 256)")
    ap.add_argument("--device", default="auto", help="auto (the GPU when there is one), cpu, cuda or cuda:N")
    args = ap.parse_args(argv)
    if args.batch_size < 1:
        ap.error(f"--batch-size {args.batch_size}: must be >= 1")
    if args.output.is_dir():
        ap.error(f"--output {args.output}: is a directory (give a file name, e.g. {args.output}/scores.csv)")
    return args


def write_csv(rows: list[tuple[str, float]], output: str | Path, threshold: float | None) -> None:
    from .atomic import atomic_open

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


def describe_scale(model: Any) -> list[str]:
    """Lines saying what the scores measure and how the job's normal training images scored."""
    lines = [f"scores: {model.config['method']['name']}, {model.score_scale}; larger = more anomalous"]
    stats = model.normal_scores
    if stats is not None:
        pct = ", ".join(f"{k}th {v:.4g}" for k, v in stats["percentiles"].items())
        lines.append(f"normal training images ({stats['n']}): mean {stats['mean']:.4g}, percentiles {pct}")
    return lines


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        show_progress_and_warnings()
        from .inference import load_model, predict  # torch: after parsing

        model = load_model(args.checkpoint, args.device)
        threshold, why = args.threshold, "given"
        if args.threshold_percentile is not None:
            threshold = model.threshold(args.threshold_percentile)
            why = f"the {args.threshold_percentile:g}th percentile of the normal training images' scores"
        rows = predict(model, args.input, args.batch_size)
        write_csv(rows, args.output, threshold)
    except OEADError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print("\n".join(describe_scale(model)))
    if threshold is not None:
        flagged = sum(score > threshold for _, score in rows)
        print(f"label: anomalous if score > {threshold:.6g} ({why}): {flagged} of {len(rows)} images")
    print(f"{len(rows)} images scored -> {args.output}")


def __getattr__(name: str) -> Any:
    """``from oe_ad.predict import predict`` still works (the function lives in ``oe_ad.inference``, imported here
    only when asked for, so that ``--help`` stays instant)."""
    if name == "predict":
        from .inference import predict

        return predict
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
