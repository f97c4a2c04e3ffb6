"""Evaluate a trained job on labelled images: ``oe-ad-eval MODEL [FOLDER] [--data NAME] [-o DIR]``.

``MODEL`` is a job's ``model.pt`` (or its job folder). The test images are either a labelled folder
(``FOLDER/<class>/*`` or ``FOLDER/test/<class>/*``; ``--normal`` names the normal classes) or the test split of
a dataset config (``--data cifar10 [--data-root PATH]``, labelled by the job's normal class and benchmark).
Prints AUROC, AUPR, FPR@95, AUPR-In and AUPR-Out (``oe_ad.metrics.CONVENTION``, printed with them); with
``-o DIR`` writes ``metrics.json``, ``scores.csv``
(``index,path,label,score``; label 1 = anomalous), ``roc.png`` and ``pr.png``. Scores are computed as
``oe-ad-predict`` computes them and metrics as a job's test pass does (``oe_ad.inference``).

Only argparse is imported before the command line is parsed: ``--help`` answers at once.
"""

import csv
import io
import sys
from argparse import Namespace, RawDescriptionHelpFormatter
from pathlib import Path
from typing import Any

from .cli.args import ArgumentParser, show_progress_and_warnings
from .errors import OEADError

EXAMPLES = """examples:
  oe-ad-eval JOB data/cifar10-jpeg -o eval/          the folder's test/ split; the job's normal class is normal
  oe-ad-eval JOB photos --normal ok,fine -o eval/    class folders ok and fine normal, every other one anomalous
  oe-ad-eval JOB --data cifar10 --data-root data     CIFAR-10's test set, labelled by the job's normal class
(JOB: a job folder, e.g. runs/quickstart/bce/<overrides>, or its model.pt)"""


def parse_args(argv: list[str]) -> Namespace:
    ap = ArgumentParser(
        prog="oe-ad-eval",
        description="Evaluate a trained job's model.pt on labelled images: AUROC, AUPR, FPR@95, AUPR-In,\n"
        "AUPR-Out, per-image scores, ROC and PR curves, computed as the job's own test pass computes them.\n"
        "FPR@95: the share of anomalous images scored as normal at the threshold that keeps 95% of the\n"
        "normal images; AUPR-In: normal images positive; AUPR-Out (= AUPR): anomalies positive.",
        epilog=EXAMPLES,
        formatter_class=RawDescriptionHelpFormatter,
    )
    ap.add_argument("model", type=Path, metavar="MODEL", help="a job's model.pt, or its job folder")
    ap.add_argument(
        "folder",
        type=Path,
        nargs="?",
        metavar="FOLDER",
        help="labelled images: FOLDER/<class>/* or FOLDER/test/<class>/* (one folder per class)",
    )
    ap.add_argument(
        "--normal",
        metavar="CLASS[,CLASS]",
        help="the normal class folder(s) of FOLDER (default: the job's normal class, else a folder named "
        "normal or good); every other class is anomalous",
    )
    ap.add_argument(
        "--data",
        metavar="NAME",
        help="instead of FOLDER: the test split of a dataset config (cifar10, folder, imagenet30, mvtec; the job's "
        "own dataset keeps its settings), labelled by the job's normal_class and benchmark",
    )
    ap.add_argument("--data-root", metavar="PATH", help="with --data: the dataset's root folder (data.root)")
    ap.add_argument(
        "-o", "--output", type=Path, metavar="DIR", help="folder for metrics.json, scores.csv, roc.png and pr.png"
    )
    ap.add_argument("--batch-size", type=int, default=256, metavar="N", help="images per forward pass (default: 256)")
    ap.add_argument("--device", default="auto", help="auto (the GPU when there is one), cpu, cuda or cuda:N")
    args = ap.parse_args(argv)
    if (args.folder is None) == (args.data is None):
        ap.error("give the test images as FOLDER or as --data NAME (one of them)")
    if args.data is not None and args.normal is not None:
        ap.error("--normal applies to FOLDER; --data labels its test split by the job's normal_class and benchmark")
    if args.folder is not None and args.data_root is not None:
        ap.error("--data-root applies to --data; FOLDER is the root itself")
    if args.batch_size < 1:
        ap.error(f"--batch-size {args.batch_size}: must be >= 1")
    if args.output is not None and args.output.exists() and not args.output.is_dir():
        ap.error(f"--output {args.output}: is a file (give a folder)")
    return args


def scores_csv(evaluation: Any) -> str:
    """``index,path,label,score`` (label 1 = anomalous; floats round-trip exactly)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "path", "label", "score"])
    data = evaluation.data
    for i, (name, label, score) in enumerate(zip(data.names, data.labels.tolist(), evaluation.scores.tolist())):
        w.writerow([i, name, int(label), repr(float(score))])
    return buf.getvalue()


def metrics(evaluation: Any, model: Any) -> dict[str, Any]:
    """The content of ``metrics.json``."""
    from .atomic import file_sha256
    from .metrics import CONVENTION

    data = evaluation.data
    return {
        "auroc": evaluation.auroc,
        "aupr": evaluation.aupr,
        "fpr95": evaluation.fpr95,
        "aupr_in": evaluation.aupr_in,
        "aupr_out": evaluation.aupr_out,
        "convention": CONVENTION,
        "n_normal": evaluation.n_normal,
        "n_anomalous": evaluation.n_anomalous,
        "normal_classes": data.normal,
        "anomalous_classes": data.anomalous,
        "data": data.source,
        "model": str(model.path.resolve()),
        "model_sha256": file_sha256(model.path),
        "method": model.config["method"]["name"],
        "score_scale": model.score_scale,
    }


def write_outputs(out: Path, evaluation: Any, model: Any) -> list[Path]:
    """metrics.json, scores.csv, roc.png and pr.png in ``out`` (each written atomically)."""
    import json

    from .job.records import write_text_atomic
    from .metrics import pr_points, roc_points
    from .report.plots import evaluation_figure

    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "metrics.json", json.dumps(metrics(evaluation, model), indent=2) + "\n")
    write_text_atomic(out / "scores.csv", scores_csv(evaluation))
    labels, scores = evaluation.data.labels, evaluation.scores
    cfg = model.config
    normal = ", ".join(model.normal_classes or [f"class {cfg.get('normal_class')}"])
    name = f"{cfg['method']['name']} · normal: {normal} · seed {cfg.get('seed')}"  # the job, not a file path
    fpr, tpr = roc_points(scores, labels)
    roc = evaluation_figure(
        fpr.numpy(),
        tpr.numpy(),
        f"AUROC {100 * evaluation.auroc:.1f} %",
        ([0, 1], [0, 1], "random 50.0 %"),
        ("false positive rate (normal flagged)", "true positive rate (anomalies found)"),
        f"ROC: {name}",
        out / "roc.png",
    )
    recall, precision = pr_points(scores, labels)
    rate = labels.float().mean().item()  # the precision of a random scorer: the share of anomalies
    pr = evaluation_figure(
        recall.numpy(),
        precision.numpy(),
        f"AUPR {100 * evaluation.aupr:.1f} % (anomalies positive)",
        ([0, 1], [rate, rate], f"random {100 * rate:.1f} %"),
        ("recall (anomalies found)", "precision"),
        f"PR: {name}",
        out / "pr.png",
    )
    return [out / "metrics.json", out / "scores.csv", roc, pr]


def main(argv: list[str] | None = None) -> None:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        show_progress_and_warnings()
        from .inference import dataset_test_split, evaluate, labelled_folder, load_model  # torch: after parsing
        from .metrics import CONVENTION

        model = load_model(args.model, args.device)
        if args.folder is not None:
            normal = None if args.normal is None else [c.strip() for c in args.normal.split(",") if c.strip()]
            data = labelled_folder(args.folder, normal, model)
        else:
            data = dataset_test_split(model, args.data, args.data_root)
        result = evaluate(model, data, args.batch_size)
        written = write_outputs(args.output, result, model) if args.output is not None else []
    except OEADError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"model: {model.path} ({model.config['method']['name']})")
    print(f"data: {data.source}: {result.n_normal} normal ({', '.join(data.normal)}), {result.n_anomalous} anomalous")
    print(f"AUROC {100 * result.auroc:.2f}%  AUPR {100 * result.aupr:.2f}% (anomalies positive)")
    print(
        f"FPR@95 {100 * result.fpr95:.2f}%  AUPR-In {100 * result.aupr_in:.2f}%  AUPR-Out {100 * result.aupr_out:.2f}%"
    )
    print(f"({CONVENTION})")
    for path in written:
        print(f"-> {path}")


if __name__ == "__main__":
    main()
