"""A trained job's ``model.pt`` from Python: load it, score images, evaluate it on labelled images (docs/api.md).

``oe-ad-predict`` and ``oe-ad-eval`` are thin command lines over this module: one way to load a model and to
preprocess images (decoded, resized and normalised exactly as the job's test images were).
"""

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import Tensor

from .data.augment import Augmenter
from .data.benchmarks import normal_class_names
from .data.images import decode, list_images
from .data.npy import read_npy_images
from .data.stream import fit_size
from .errors import OEADError
from .job.checkpoint import MODEL_FILE, load_weights, read_model_file
from .job.scores import percentile_key
from .progress import Progress


@dataclass
class Model:
    """A trained method in eval mode with its preprocessing; ``score`` maps uint8 images to anomaly scores."""

    method: torch.nn.Module
    augmenter: Augmenter
    payload: dict[str, Any]  # model.pt as plain data (config, preprocessing, optional class names and thresholds)
    path: Path
    device: torch.device

    @property
    def config(self) -> dict[str, Any]:
        """The job's resolved config."""
        return self.payload["config"]

    @property
    def input_size(self) -> int:
        """Side length images are decoded or resized to before the test transform (the job's data size)."""
        return int(self.payload["preprocessing"]["input_size"])

    @property
    def normal_classes(self) -> list[str] | None:
        """Names of the classes the job trained on as normal (None: a model.pt that predates them)."""
        return (self.payload.get("facts") or {}).get("normal_names")

    @property
    def normal_scores(self) -> dict[str, Any] | None:
        """The normal training images' scores: ``n``, ``mean``, ``std``, ``min``, ``max``, ``percentiles``
        (``{"99": value, ...}``) and ``scale`` (None: a model.pt that predates them)."""
        return self.payload.get("normal_scores")

    @property
    def score_scale(self) -> str:
        """What a raw score measures, in words; larger is always more anomalous."""
        return str(getattr(self.method, "score_scale", "the method's anomaly score"))

    def threshold(self, percentile: float) -> float:
        """The ``percentile``-th percentile of the normal training images' scores, as stored in model.pt."""
        stats = self.normal_scores
        if stats is None:
            raise OEADError(
                f"checkpoint={self.path}: this {MODEL_FILE} holds no score percentiles of the normal training "
                "images (written by an older oe_ad); give a threshold on the score scale instead (--threshold VALUE)"
            )
        key = percentile_key(percentile)
        if key not in stats["percentiles"]:
            raise OEADError(
                f"percentile {key} is not stored in {self.path}; choose one of {', '.join(stats['percentiles'])}"
            )
        return float(stats["percentiles"][key])

    @torch.no_grad()
    def score(self, images: Tensor, names: Sequence[str] | None = None) -> Tensor:
        """Anomaly scores (float32, CPU) of a uint8 (N, 3, H, W) batch, resized to ``input_size`` if needed;
        larger = more anomalous. A non-finite score is an error naming the image (``names``), never a number."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise OEADError(f"expected a uint8 (N, 3, H, W) batch, got {tuple(images.shape)} {images.dtype}")
        x = fit_size(images.to(self.device), (self.input_size, self.input_size))
        scores = self.method.score(self.method(self.augmenter.test(x))).float().cpu()
        if not torch.isfinite(scores).all():
            i = int((~torch.isfinite(scores)).nonzero()[0])
            bad = names[i] if names is not None else f"image {i} of the batch"
            raise OEADError(f"checkpoint={self.path}: the model scores {bad} as NaN/inf (broken weights?)")
        return scores


def load_model(checkpoint: str | os.PathLike, device: str = "auto") -> Model:
    """The trained method of a job's ``model.pt`` (or its job folder), built from the job's own config, in eval
    mode on ``device`` (``auto``: the GPU when there is one)."""
    from .config.factory import build_method, resolve_device  # the same construction as training
    from .methods.base import Facts

    dev = resolve_device(device)
    path = Path(checkpoint)
    path = path / MODEL_FILE if path.is_dir() else path
    payload = read_model_file(path)
    config = OmegaConf.create(payload["config"])
    for key in ("net.snapshot", "net.model.weights"):  # a FeatureNet's weights are all in model.pt: not loaded again
        if OmegaConf.select(config, key) is not None:
            OmegaConf.update(config, key, None)
    method = build_method(config)
    # prepared as training prepared it (e.g. CLIP's prompts); data-derived state comes with the weights
    method.prepare(Facts(**payload.get("facts", {"normal_names": []})))
    load_weights(method, payload, path)
    prep = payload["preprocessing"]
    augmenter = Augmenter(mean=torch.tensor(prep["mean"]), std=torch.tensor(prep["std"]), crop=prep["image_size"])
    return Model(method.to(dev).eval(), augmenter.to(dev), payload, path, dev)


def iter_inputs(path: Path, size: int, batch_size: int) -> Iterator[tuple[list[str], Tensor]]:
    """(names, uint8 NCHW batch at the training input size) from a folder of images or a .npy."""
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise OEADError(f"input={path}: no image files found")
        for names, x in iter_files(files, size, batch_size):
            yield [str(Path(f).relative_to(path)) for f in names], x
    elif path.suffix == ".npy" and path.is_file():
        array = read_npy_images(path, "input")
        for i in range(0, len(array), batch_size):
            x = torch.from_numpy(np.array(array[i : i + batch_size])).permute(0, 3, 1, 2)  # a copy: mmap is read-only
            yield [f"{path.name}[{j}]" for j in range(i, i + len(x))], fit_size(x, (size, size))
    else:
        raise OEADError(f"input={path}: not a folder of images or a .npy file")


def iter_files(files: Sequence[Path], size: int, batch_size: int) -> Iterator[tuple[list[Path], Tensor]]:
    """(files, uint8 NCHW batch) of image files, each decoded (and resized) as the job's data was."""
    for i in range(0, len(files), batch_size):
        chunk = list(files[i : i + batch_size])
        yield chunk, torch.from_numpy(np.stack([decode(f, size) for f in chunk])).permute(0, 3, 1, 2)


def score_batches(model: Model, batches: Iterator[tuple[list, Tensor]], total: int) -> tuple[list, Tensor]:
    """(names, scores) of every image of ``batches`` (``total`` images), with progress on long runs."""
    names, scores = [], []
    with Progress(total, "scoring images", "images") as bar:
        for chunk, x in batches:
            names += chunk
            scores.append(model.score(x, chunk))
            bar.update(len(x))
    return names, torch.cat(scores) if scores else torch.zeros(0)


def input_count(path: Path) -> int | None:
    """How many images ``iter_inputs`` will yield (for the progress total)."""
    if path.is_dir():
        return len(list_images(path))
    return len(read_npy_images(path, "input")) if path.suffix == ".npy" and path.is_file() else None


def predict(
    checkpoint: str | os.PathLike | Model, input_path: str | os.PathLike, batch_size: int = 256, device: str = "auto"
) -> list[tuple[str, float]]:
    """Anomaly scores of every image in a folder (searched recursively) or an (N, H, W, 3) uint8 ``.npy``:
    a list of (name, score), names relative to the folder (``file.npy[i]`` for an array)."""
    model = checkpoint if isinstance(checkpoint, Model) else load_model(checkpoint, device)
    path = Path(input_path)
    names, scores = score_batches(model, iter_inputs(path, model.input_size, batch_size), input_count(path))
    return list(zip(names, scores.tolist()))


# -- labelled data -----------------------------------------------------------------------------------------
@dataclass
class Labelled:
    """Test images with anomaly labels (1 = anomalous): image files of a folder, or a dataset's test tensor."""

    labels: Tensor
    names: list[str]
    normal: list[str]  # the normal class names
    anomalous: list[str]  # the anomalous class names
    source: str  # what the data are, for the output (a folder or a data config)
    files: list[Path] = field(default_factory=list)
    images: Tensor | None = None  # uint8 NCHW, when the data come as a tensor

    def batches(self, size: int, batch_size: int) -> Iterator[tuple[list[str], Tensor]]:
        if self.images is None:
            for i, (_, x) in enumerate(iter_files(self.files, size, batch_size)):
                yield self.names[i * batch_size : i * batch_size + len(x)], x
        else:
            for i in range(0, len(self.images), batch_size):
                yield self.names[i : i + batch_size], self.images[i : i + batch_size]


def labelled_folder(root: str | os.PathLike, normal: Sequence[str] | None, model: Model) -> Labelled:
    """The images of ``<root>/<class>/*`` (or ``<root>/test/<class>/*``, e.g. a job's data root), labelled normal
    when their class is in ``normal``. Default normal classes: the job's own normal classes that the folder has,
    else a class folder named ``normal`` or ``good``."""
    root = Path(root)
    if not root.is_dir():
        raise OEADError(f"data={root}: no such directory")
    base = root / "test" if (root / "test").is_dir() else root
    classes = sorted(p.name for p in base.iterdir() if p.is_dir())
    if not classes:
        raise OEADError(f"data={base}: expected one folder of images per class (<class>/*), found none")
    if normal is None:
        known = [c for c in (model.normal_classes or []) if c in classes]
        normal = known or [c for c in ("normal", "good") if c in classes][:1]
        if not normal:
            trained = ", ".join(model.normal_classes or ["unknown"])
            raise OEADError(
                f"data={base}: none of its classes ({', '.join(classes)}) is the model's normal class ({trained}): "
                "name the normal one(s) with --normal CLASS[,CLASS]"
            )
    unknown = [c for c in normal if c not in classes]
    if unknown:
        raise OEADError(f"--normal {','.join(unknown)}: no such class folder in {base} (it has {', '.join(classes)})")
    files, labels = [], []
    for c in classes:
        found = list_images(base / c)
        files += found
        labels += [int(c not in normal)] * len(found)
    labelled = Labelled(
        torch.tensor(labels, dtype=torch.long),
        [str(f.relative_to(base)) for f in files],
        list(normal),
        [c for c in classes if c not in normal],
        str(base),
        files=files,
    )
    return check_labelled(labelled)


def check_labelled(data: Labelled) -> Labelled:
    """Both kinds present: an AUROC needs normal and anomalous images."""
    n_anomalous = int(data.labels.sum())
    if n_anomalous == 0 or n_anomalous == len(data.labels):
        kind = "anomalous" if n_anomalous == 0 else "normal"
        raise OEADError(f"data={data.source}: no {kind} images (normal classes: {', '.join(data.normal)})")
    return data


def dataset_test_split(model: Model, data: str, root: str | None = None) -> Labelled:
    """The test split of a dataset config (``oe_ad/conf/data/<data>.yaml``, or the job's own data node when
    ``data`` is the job's dataset), labelled by the job's ``normal_class`` and ``benchmark``."""
    from .config.factory import build

    cfg = model.config
    spec = dict(cfg["data"]) if data == cfg["data"]["name"] else compose_data(data)  # the job's own: root, cache
    if root is not None:
        spec["root"] = str(root)
    if spec.get("root") == "???":
        raise OEADError(f"data={data} needs a root folder: --data-root PATH")
    for label in ("name", "fingerprint"):  # what the record knows of the node, not constructor arguments
        spec.pop(label, None)
    source = build(spec)
    benchmark = cfg.get("benchmark", "ovr")
    _, images, labels = source.benchmark_split(cfg["normal_class"], benchmark)
    normal = normal_class_names(list(source.classes), cfg["normal_class"], benchmark)
    # the other classes are the anomalies of a labelled dataset (MVTec-AD's are its category's defects)
    others = source.anomaly_classes(cfg["normal_class"], benchmark)  # none where a class's anomalies are its own
    labelled = Labelled(
        labels.long().cpu(),
        [f"{data}:test[{i}]" for i in range(len(labels))],
        normal,
        others,
        f"data={data} (data.root={spec.get('root')})",
        images=images.cpu(),
    )
    return check_labelled(labelled)


def compose_data(data: str) -> dict[str, Any]:
    """The package's data config ``data`` (as ``oe-ad-run data=...`` composes it: ``paths`` from the
    environment) as a plain dict; a root that must be given reads ``???``."""
    from .config import compose

    return OmegaConf.to_container(compose([f"data={data}"]).data, resolve=True)


@dataclass
class Evaluation:
    """What ``evaluate`` measured, as fractions: AUROC, AUPR (anomalies positive), FPR@95, AUPR-In and AUPR-Out
    (``oe_ad.metrics.CONVENTION`` says which class is positive for each), and the per-image scores."""

    auroc: float
    aupr: float
    scores: Tensor
    data: Labelled
    fpr95: float
    aupr_in: float
    aupr_out: float

    @property
    def n_normal(self) -> int:
        return int((self.data.labels == 0).sum())

    @property
    def n_anomalous(self) -> int:
        return int(self.data.labels.sum())


def evaluate(model: Model, data: Labelled, batch_size: int = 256) -> Evaluation:
    """Score labelled test images and measure AUROC, AUPR, FPR@95 and AUPR-In/Out exactly as a job measures its
    test set (``oe_ad.metrics.ood_metrics``)."""
    from .metrics import ood_metrics

    _, scores = score_batches(model, data.batches(model.input_size, batch_size), len(data.labels))
    m = ood_metrics(scores, data.labels)
    return Evaluation(m["auroc"], m["aupr"], scores, data, m["fpr95"], m["aupr_in"], m["aupr_out"])
