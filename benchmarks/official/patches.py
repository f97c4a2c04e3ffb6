"""Run the paper's ``train_cifar.py`` (liznerski/eoe) unmodified, with import-time patches that let it run on a CPU.

    python benchmarks/official/patches.py --eoe EOE_CHECKOUT --data WORK/data --out JOB_DIR [--oe-index I] \\
        -- --classes 1 -it 1 -e 12 --milestones 6 9 -o hsc

Everything after ``--`` goes to ``train_cifar.py``'s own argument parser. ``WORK/data`` is what
``run_official.py`` prepares (the CIFAR-10 batches and ``manifest.json``). The paper's code writes its logs under
``JOB_DIR/eoe-data/results/``; this script writes ``JOB_DIR/oe_indices.json`` (the OE subset(s) it drew).

This file runs in the paper's code's environment, so it imports nothing from oe_ad. Each patch is one function
below, named in PATCHES with the reason it is needed; none changes what the paper's code computes.
"""

import argparse
import inspect
import json
import os
import runpy
import sys
from pathlib import Path

PATCHES = {
    "threads": "one thread per job: OMP/MKL/OpenBLAS threads 1 and torch.set_num_threads(1), so two jobs share two "
    "cores without oversubscription",
    "numpy-infty": "np.infty = np.inf: NumPy 2 removed the alias; eoe uses it as the 'no limit' default of --oe-size",
    "cpu-device": "create_trainer gets gpus=['cpu']: train_cifar.py hard-codes devices=[0] (cuda:0) and -d takes "
    "only GPU ids",
    "preview-cpu": "TorchvisionDataset.preview moves a batch to the GPU with .cuda() to draw the preview image it "
    "logs; Tensor.cuda is the identity during that call",
    "dataloader-workers": "DataLoaders in eoe.datasets.bases use num_workers=0 (no worker processes; the trainer "
    "asks for 2, the statistics pass for 4), persistent_workers=False (needs workers) and pin_memory=False (no GPU)",
    "cifar-local": "torchvision's CIFAR10 compares the batch files with the MD5s of the original archive and would "
    "download it; the MD5s are replaced with those of the local copy, so the integrity check still runs on it",
    "oe-npy": "TinyImages reads the (N, 32, 32, 3) uint8 OE pool .npy instead of the 80 Million Tiny Images "
    "tiny_images.bin; its length is the pool size and there is no CIFAR exclusion list (exclude_cifar off)",
    "data-dir": "create_trainer gets dataset_path=JOB_DIR/eoe-data: datasets (links) and results in the job folder, "
    "not in the checkout",
    "oe-index": "(only with --oe-index I) create_trainer gets oe_limit_samples=[I]: the OE set is exactly pool image "
    "I (eoe's create_subset takes a list of indices)",
}


def limit_threads() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)


def patch_numpy_infty() -> None:
    import numpy as np

    if not hasattr(np, "infty"):
        np.infty = np.inf


def patch_cifar_local(md5: dict[str, str]) -> None:
    import torchvision.datasets as tvd

    tvd.CIFAR10.train_list = [[name, md5[name]] for name, _ in tvd.CIFAR10.train_list]
    tvd.CIFAR10.test_list = [[name, md5[name]] for name, _ in tvd.CIFAR10.test_list]
    tvd.CIFAR10.meta = {**tvd.CIFAR10.meta, "md5": md5[tvd.CIFAR10.meta["filename"]]}


def patch_dataloader_workers() -> None:
    from eoe.datasets import bases

    loader = bases.DataLoader

    def single_process_loader(*args, **kwargs):
        kwargs.update(num_workers=0, persistent_workers=False, prefetch_factor=None, pin_memory=False)
        return loader(*args, **kwargs)

    bases.DataLoader = single_process_loader


def patch_preview_cpu() -> None:
    import torch
    from eoe.datasets.bases import TorchvisionDataset

    preview = TorchvisionDataset.preview

    def cpu_preview(self, *args, **kwargs):
        cuda = torch.Tensor.cuda
        torch.Tensor.cuda = lambda t, *a, **k: t
        try:
            return preview(self, *args, **kwargs)
        finally:
            torch.Tensor.cuda = cuda

    TorchvisionDataset.preview = cpu_preview


def patch_oe_npy(pool_path: Path) -> None:
    import numpy as np
    from eoe.datasets import tinyimages

    pool = np.load(pool_path, mmap_mode="r")
    init = tinyimages.TinyImages.__init__

    def pool_init(self, root, *args, exclude_cifar=True, **kwargs):
        init(self, root, *args, exclude_cifar=False, **kwargs)  # opens root/tinyimages/tiny_images.bin: a link
        self.targets = np.zeros(len(pool))

    def load_image(self, idx):
        return np.ascontiguousarray(pool[idx])  # HWC uint8, as the pool stores it

    tinyimages.TinyImages.__init__ = pool_init
    tinyimages.TinyImages.load_image = load_image


def record_oe_subsets(path: Path) -> None:
    """Write the OE indices each dataset build draws (``"all"`` for the whole pool) to ``path``."""
    from eoe.datasets.bases import TorchvisionDataset
    from eoe.datasets.tinyimages import ADTinyImages

    create_subset = TorchvisionDataset.create_subset
    draws: list = []

    def recording_create_subset(self, dataset_split, class_labels):
        subset = create_subset(self, dataset_split, class_labels)
        if isinstance(self, ADTinyImages):
            n = len(dataset_split)
            draws.append("all" if len(subset.indices) == n else [int(i) for i in subset.indices])
            path.write_text(json.dumps({"pool_size": n, "draws": draws}) + "\n")
        return subset

    TorchvisionDataset.create_subset = recording_create_subset


def patch_create_trainer(data_root: Path, oe_index: int | None) -> None:
    import eoe.main

    create_trainer = eoe.main.create_trainer
    signature = inspect.signature(create_trainer)

    def cpu_create_trainer(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.arguments["gpus"] = ["cpu"]
        bound.arguments.setdefault("kwargs", {})["dataset_path"] = str(data_root)
        if oe_index is not None:
            bound.arguments["oe_limit_samples"] = [oe_index]
        return create_trainer(*bound.args, **bound.kwargs)

    eoe.main.create_trainer = cpu_create_trainer


def link_datasets(work_data: Path, out: Path, pool_path: Path) -> Path:
    """``out/eoe-data/datasets/`` with links to the prepared CIFAR batches and the pool; return ``out/eoe-data``."""
    root = out / "eoe-data"
    (root / "datasets" / "tinyimages").mkdir(parents=True, exist_ok=True)
    for link, target in (
        (root / "datasets" / "cifar-10-batches-py", work_data / "cifar-10-batches-py"),
        (root / "datasets" / "tinyimages" / "tiny_images.bin", pool_path),
    ):
        if not link.is_symlink():
            link.symlink_to(target.resolve())
    return root


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(here)]  # no sibling module shadows eoe's
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eoe", type=Path, required=True, help="a checkout of liznerski/eoe")
    parser.add_argument("--data", type=Path, required=True, help="the folder run_official.py prepared (WORK/data)")
    parser.add_argument("--out", type=Path, required=True, help="this job's folder")
    parser.add_argument("--oe-index", type=int, default=None, help="OE set = this one pool image")
    args = parser.parse_args(argv[:split])
    eoe_args = argv[split + 1 :]

    limit_threads()
    patch_numpy_infty()  # before eoe is imported: its signatures use np.infty as a default
    manifest = json.loads((args.data / "manifest.json").read_text())
    patch_cifar_local({name: f["md5"] for name, f in manifest["cifar"]["files"].items()})
    pool_path = Path(manifest["oe"]["stat"]["path"])
    args.out.mkdir(parents=True, exist_ok=True)
    data_root = link_datasets(args.data, args.out, pool_path)

    sys.path.insert(0, str((args.eoe / "src").resolve()))
    patch_dataloader_workers()
    patch_preview_cpu()
    patch_oe_npy(pool_path)
    record_oe_subsets(args.out / "oe_indices.json")
    patch_create_trainer(data_root, args.oe_index)

    sys.argv = [str(args.eoe / "src" / "eoe" / "main" / "train_cifar.py"), *eoe_args]
    runpy.run_module("eoe.main.train_cifar", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
