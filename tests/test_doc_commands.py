"""Every shell command that README.md and docs/*.md show works as written.

The commands are read from the pages' shell fences (```bash, ```sh, ```shell, ```console): `\\` continuations
joined, comments dropped, one command per line. ``COMMANDS`` gives each of them one treatment, so a command added
to a page fails ``test_every_doc_command_has_a_treatment`` until someone decides how it is checked:

- ``Run``: executed by bash, as written, in a temporary folder laid out like a checkout (``world``) that holds tiny
  stand-ins for the data the pages name. All blocks run in one world, the README's first, each page's in page
  order, so later commands find what earlier ones wrote (``runs/default/...``; run the slow blocks together).
  Only the environment differs from a user's: the console
  commands and ``python`` on PATH run this checkout, W&B is offline, the Hugging Face hub offline. ``append``
  adds overrides (to ``ARGS`` for a make target) that shrink a command whose own schedule would train for minutes
  even on tiny data; ``replace`` rewrites a part of it. A command changed either way is also validated as written
  (below). Slow (``-m slow``): the whole set takes minutes.
- ``Validate``: the command's jobs (``oe_ad.run``/``oe_ad.search``/``oe_ad.sweep`` on the command line, or
  what ``make -n`` says a target runs) are expanded and each job's config is checked by ``oe_ad.sweep.check``
  against the same world: the schema of ``oe_ad/config/schema.py``, ``oe_size`` against the OE pool's size, values left
  ``???``. This is how an ``oe_size`` larger than the pool is caught in a 3,800-job sweep without training.
  Every ``Run`` command that launches jobs is validated as written too. Fast.
- ``Skip``: what cannot run on a CPU machine without a package index, a GPU, a cluster or an account.

The world (``make_world``): ``data/cifar-10-batches-py`` (CIFAR-10's pickle format, 10 train and 3 test images
per class), ``data/300K_random_images.npy`` (the default OE pool, its real shape (300000, 32, 32, 3) as a sparse
file: pool sizes are what ``oe_size`` is checked against), ``../shared/data`` (the Makefile's default ``SHARED``:
``cifar10-jpeg.tar.gz`` with 6 train and 3 test JPEGs per CIFAR-10 class, ``tin32-oe-30k.npy`` of shape
(30000, 32, 32, 3), sparse), and the placeholders the pages use as real paths: ``path/to/images``, ``images/``,
``path/to/photos`` and ``photos/`` (class folders ``ok``, ``fine``, ``scratch``) and ``JOB``, a link to the job
``runs/default/bce/normal_class=3,oe_size=256,seed=0`` that the README's commands train first.
"""

import configparser
import os
import pickle
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_FENCES = ("bash", "sh", "shell", "console")
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Shell variables a page may use without defining them in the same block.
STANDARD_VARIABLES = {"PWD", "HOME"}

# Overrides that make a training command take seconds on the tiny data: a batch of 8 + 8 images, one epoch.
TINY = "batch_size=8 epochs=1 milestones=[]"


def keep_folder_names(*keys: str) -> str:
    """An override that leaves ``keys`` out of the job folder names (config.yaml's exclude_keys plus them), so
    a job trained with ``TINY`` lands in the folder the page names."""
    text = (ROOT / "src/oe_ad/conf/config.yaml").read_text()
    excluded = re.search(r"exclude_keys: \[(.*?)\]", text).group(1).replace(" ", "")
    return f"hydra.job.config.override_dirname.exclude_keys=[{excluded},{','.join(keys)}]"


@dataclass(frozen=True)
class Run:
    append: str = ""  # overrides added to the command (to ARGS="..." for make)
    replace: tuple[tuple[str, str], ...] = ()  # (old, new) text replacements
    why: str = ""  # why the command is changed, when it is


@dataclass(frozen=True)
class Validate:
    why: str  # why it is not run


@dataclass(frozen=True)
class Skip:
    why: str


NEEDS_NET = "downloads from a package index"
GPU = "needs an NVIDIA GPU"
BIG_DATA = "needs the real dataset"
RESEARCH = "tests/test_research_doc.py runs it after the page's Python example trained the job it names"

# Every command of the pages, as ``block_commands`` spells it (spaces collapsed), and its treatment.
COMMANDS: dict[str, Run | Validate | Skip] = {
    # README: Quick start, installing
    "make install run": Run(replace=(("install run", "run"),), why="`make install` is CI's first step (.ci/run)"),
    "make test": Skip("the suite this test is part of; CI (.ci/run) runs it"),
    "python3.11 -m venv .venv && . .venv/bin/activate": Skip(
        "the first step of the install recipe, whose other steps download packages; `make install` in CI runs them"
    ),
    "pip install torch==2.14.1 torchvision==0.29.1": Skip(NEEDS_NET),
    "pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1": Skip(NEEDS_NET),
    'pip install -c requirements.lock -e ".[dev,launchers]"': Skip(NEEDS_NET),
    # README: the paper's protocol
    "python -m oe_ad.run method=bce oe_size=256": Run(append=TINY, why="200 epochs"),
    "python -m oe_ad.run method=bce oe_size=256 -m": Run(
        append=f"normal_class=3 seed=0 {TINY} {keep_folder_names('batch_size', 'epochs', 'milestones')}",
        why="100 jobs of 200 epochs: the one the later commands use, in its own folder",
    ),
    "python -m oe_ad.run -m method=hsc normal_class=3 seed=0,1": Run(append=TINY, why="200 epochs"),
    "python -m oe_ad.report runs/default": Run(),
    "python -m oe_ad.sweep method=bce oe_size=256": Run(),
    "export SHARED=../shared/data": Run(),
    "make data": Run(),
    "python -m oe_ad.run method=hsc data=folder data.root=data/cifar10-jpeg oe=npy "
    "oe.path=$SHARED/tin32-oe-30k.npy epochs=10 milestones=[8] normal_class=1": Run(
        append="batch_size=8", why="128 + 128 images a step"
    ),
    # README: ImageNet-30, MVTec-AD, 80 Million Tiny Images, leave-one-class-out
    "python -m oe_ad.run -m method=deep_sad,hsc,focal,bce data=imagenet30 data.root=data/imagenet30 "
    "oe.root=data/imagenet22k name=table1-imagenet30": Validate(f"{BIG_DATA}: ImageNet-30 and ImageNet-22k"),
    "python -m oe_ad.run -m method=deep_svdd,deep_sad,hsc,focal,bce benchmark=loo seed=0,1 oe=tiny_images "
    "name=loo-cifar10": Validate(f"{BIG_DATA}: 80 Million Tiny Images"),
    "python -m oe_ad.run -m method=deep_svdd,hsc,bce benchmark=loo seed=0,1 data=imagenet30 "
    "data.root=data/imagenet30 oe.root=data/imagenet22k name=loo-imagenet30": Validate(
        f"{BIG_DATA}: ImageNet-30 and ImageNet-22k"
    ),
    "python -m oe_ad.run -m method=deep_svdd,deep_sad,hsc,focal,bce data=mvtec seed=0,1 oe.root=data/imagenet22k "
    "name=table15-mvtec": Validate(f"{BIG_DATA}: MVTec-AD and ImageNet-22k"),
    "python -m oe_ad.report runs/table15-mvtec": Skip("reports the records of the validated sweep above"),
    # README: CLIP
    "python -m oe_ad.run -m method=clip_zero_shot oe=none name=table2": Validate("downloads CLIP's weights"),
    "python -m oe_ad.run -m method=clip_bce name=table2": Validate("downloads CLIP's weights"),
    "python -m oe_ad.report runs/table2": Skip("reports the records of the validated sweeps above"),
    # README and docs/gpu.md: SLURM
    "python -m oe_ad.run -m launcher=slurm method=bce oe_size=256 name=bce-256 hydra.launcher.partition=gpu "
    "hydra.launcher.timeout_min=240 hydra.launcher.array_parallelism=32 hydra.launcher.cpus_per_task=8 "
    "hydra.launcher.mem_gb=32 checkpoint.every_n_epochs=5": Validate("needs a SLURM cluster"),
    # docs/gpu.md: SLURM (tests/test_slurm.py runs these cases on a one-node SLURM)
    "python -m oe_ad.run -m launcher=slurm method=bce oe_size=256 name=bce-256 hydra.launcher.partition=gpu "
    "hydra.launcher.timeout_min=240 hydra.launcher.array_parallelism=32 hydra.launcher.cpus_per_task=8 "
    "hydra.launcher.mem_gb=32 checkpoint.every_n_epochs=5 hydra.launcher.max_num_timeout=3": Validate(
        "needs a SLURM cluster"
    ),
    "python -m oe_ad.run -m launcher=vectorised_slurm method=bce oe_size=256 normal_class=0 seed=0,1,2,3,4,5,6,7 "
    "name=bce-seeds hydra.launcher.max_models=4 hydra.launcher.partition=gpu hydra.launcher.timeout_min=240 "
    "checkpoint.every_n_epochs=5 hydra.launcher.max_num_timeout=3": Validate("needs a SLURM cluster"),
    "sudo tools/slurm.sh start": Skip("installs packages and starts daemons as root (tests/test_slurm.py uses it)"),
    "sudo tools/slurm.sh stop": Skip("stops the daemons of the command above"),
    # README and docs/api.md: inference and evaluation
    "oe-ad-predict runs/default/bce/normal_class=3,oe_size=256,seed=0 path/to/images --output scores.csv "
    "--threshold-percentile 99": Run(),
    "oe-ad-eval runs/default/bce/normal_class=3,oe_size=256,seed=0 data/cifar10-jpeg -o eval/": Run(),
    "oe-ad-eval JOB path/to/photos --normal ok,fine -o eval/": Run(),
    "oe-ad-eval JOB --data cifar10 --data-root data -o eval/": Run(),
    "oe-ad-predict JOB images/ -o scores.csv --threshold-percentile 99": Run(),
    "oe-ad-eval JOB data/cifar10-jpeg -o eval/": Run(),
    "oe-ad-eval JOB photos/ --normal ok,fine -o eval/": Run(),
    # README and docs/experiments.md: the paper's tables and figures
    "make fig2-cifar10": Run(append=f"normal_class=0 seed=0 oe_size=1 {TINY}", why="3,800 jobs"),
    'make fig2-cifar10 ARGS="normal_class=1,3 seed=0 oe_size=1,4,16,64,256,null epochs=10 milestones=[8]"': Run(
        replace=(("normal_class=1,3", "normal_class=1"), ("oe_size=1,4,16,64,256,null", "oe_size=4,256")),
        append="batch_size=8",
        why="24 jobs of 10 epochs",
    ),
    "make report-fig2-cifar10": Run(),
    "python -m oe_ad.run -m experiment=fig2-cifar10 normal_class=3": Run(
        append=f"seed=0 oe_size=16 {TINY}", why="380 jobs"
    ),
    "python -m oe_ad.sweep experiment=fig2-cifar10": Run(),
    "python -m oe_ad.sweep --check experiment=fig2-cifar10 data=folder data.root=data/cifar10-jpeg oe=npy "
    "oe.path=$SHARED/tin32-oe-30k.npy oe_size=1,2,4,8,16,32,64,128,256,512,1024,2048,4096,8192,16384,null": Run(),
    'make fig2-cifar10 ARGS="data=folder data.root=data/cifar10-jpeg oe=npy oe.path=$SHARED/tin32-oe-30k.npy '
    'oe_size=1,2,4,8,16,32,64,128,256,512,1024,2048,4096,8192,16384,null"': Run(
        replace=(("oe_size=1,2,4,8,16,32,64,128,256,512,1024,2048,4096,8192,16384,null", "oe_size=16384,null"),),
        append=f"normal_class=2 seed=0 {TINY}",
        why="3,200 jobs",
    ),
    'make fig2-cifar10 ARGS="normal_class=1 seed=0"': Run(append=f"oe_size=2 {TINY}", why="38 jobs"),
    "oe-ad-sweep experiment=fig2-cifar10": Run(),
    "oe-ad-run -m experiment=fig2-cifar10 launcher=vectorised": Run(
        append=f"normal_class=0 seed=0,1 oe_size=1,2 {TINY}", why="3,800 jobs"
    ),
    # README: notebook
    'pip install -c requirements.lock -e ".[notebook]"': Skip(NEEDS_NET),
    "OE_AD_RUNS=$PWD/runs jupyter lab notebooks/": Skip("a server that runs until stopped"),
    # README: vectorised training
    "python -m oe_ad.run -m launcher=vectorised method=bce oe_size=1,2,4 normal_class=0,1 seed=0,1,2": Run(
        append=TINY, why="200 epochs"
    ),
    "python -m oe_ad.run -m launcher=vectorised hydra.launcher.max_models=16 method=bce oe_size=1,2,4": Run(
        append=f"normal_class=4 seed=0 {TINY}", why="300 jobs"
    ),
    "make bench-vectorised": Run(append="--classes 1 --seeds 2 --train 8 --test 4", why="64 jobs"),
    # README: development
    "make lint": Run(),
    "make test-slow": Skip("runs this test; CI (.ci/run) runs the slow tests"),
    "make bench": Run(append="--steps 1 --rounds 1", why="5 rounds of 30 steps"),
    "make real-data": Run(append="batch_size=8", why="the tiny data stand in for the CIFAR-10 copy"),
    ".venv/bin/python tools/check_deps.py": Run(),
    "bash tests/wheel_smoke.sh": Skip("CI (.ci/run) runs it; it builds and installs the wheel"),
    # docs/export.md (tests/test_export.py checks the files' scores)
    "oe-ad-export JOB --format onnx": Run(),
    "oe-ad-export JOB --format torchscript": Run(),
    "oe-ad-export JOB --format onnx --input float -o detector.onnx": Run(),
    # docs/research.md: tests/test_research_doc.py runs the page (its Python example, then these on its job)
    "oe-ad-run data=folder data.root=my_images oe=anomalies net=resnet18 net.snapshot=resnet18.pt "
    '"net.freeze=[conv1,bn1,layer1,layer2,layer3]" method=bce normal_class=0 epochs=20 "milestones=[15]" '
    "batch_size=32 name=my-research logger=csv": Skip(RESEARCH),
    'oe-ad-export "runs/my-research/bce/batch_size=32,data=folder,epochs=20,milestones=[15],'
    'net.freeze=[conv1,bn1,layer1,layer2,layer3],net=resnet18,normal_class=0,oe=anomalies" --format onnx': Skip(
        RESEARCH
    ),
    # docs/extending.md (tests/test_extending.py checks the jobs' results)
    "PYTHONPATH=. oe-ad-sweep --config-dir my_conf experiment=stripes-demo": Run(),
    "PYTHONPATH=. oe-ad-run --config-dir my_conf experiment=stripes-demo oe_size=4 logger=csv "
    "paths.output_dir=runs": Run(),
    "PYTHONPATH=. oe-ad-run --config-dir my_conf -m experiment=stripes-demo logger=csv paths.output_dir=runs": Run(),
    "oe-ad-report runs/stripes-demo": Run(),
    # docs/gpu.md
    "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv": Skip(GPU),
    '.venv/bin/python -c "import torch; print(torch.__version__, torch.version.cuda, '
    'torch.cuda.is_available())"': Run(),
    "make gpu-check": Skip(f"{GPU}; downloads CIFAR-10 and CIFAR-100"),
    "CUDA_VISIBLE_DEVICES=0 python -m oe_ad.run -m experiment=table1-cifar10 > gpu0.log 2>&1 &": Validate(
        f"{GPU}; {BIG_DATA}: 80 Million Tiny Images"
    ),
    "CUDA_VISIBLE_DEVICES=1 python -m oe_ad.run -m experiment=table1-cifar10 > gpu1.log 2>&1 &": Validate(
        f"{GPU}; {BIG_DATA}: 80 Million Tiny Images"
    ),
    "python -m oe_ad.run -m experiment=table1-imagenet30 data.root=data/imagenet30 oe.root=data/imagenet22k "
    "launcher=slurm hydra.launcher.gpus_per_node=4 hydra.launcher.tasks_per_node=4 hydra.launcher.cpus_per_task=8 "
    "trainer.devices=4 trainer.strategy=ddp": Validate("needs a SLURM cluster with 4 GPUs per node"),
    "make gpu-check GPU_DATA=DIR GPU_OE=FILE.npy": Skip(GPU),
    'make gpu-check GPU_ARGS="--only 3"': Skip(GPU),
    "python benchmarks/gpu_check.py gpu-out --data DIR --oe FILE.npy": Skip(GPU),
    # docs/wandb.md
    "wandb login": Skip("needs a W&B account"),
    "oe-ad-run method=hsc logger=tensorboard name=mine": Run(append=TINY, why="200 epochs"),
    "tensorboard --logdir runs/mine": Skip(
        "a web server that runs until stopped (tests/test_tensorboard.py reads the events)"
    ),
    "oe-ad-wandb-sync runs/fig2-cifar10 --dry-run": Run(),
    "oe-ad-wandb-sync runs/fig2-cifar10": Skip("uploads to W&B (an account and the network)"),
}


# -- reading the pages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    page: str  # README.md, docs/api.md, ...
    line: int  # the line of its opening fence
    commands: tuple[str, ...]
    cwd: str = "."  # where the block runs, relative to the world: a first line `# run: from DIR/` says so

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def strip_comment(line: str) -> str:
    """``line`` without a ``# comment`` (a ``#`` at the start or after a blank, outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def block_commands(body: str) -> tuple[str, ...]:
    """The commands of a fence's body: continuations joined, comments dropped, blanks collapsed."""
    commands, pending = [], ""
    for raw in body.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = " ".join(strip_comment(pending + raw).split())
        pending = ""
        if line:
            commands.append(line)
    return tuple(commands)


def doc_blocks() -> list[Block]:
    blocks = []
    for page in PAGES:
        text = page.read_text()
        for m in re.finditer(r"^```([\w-]*)[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
            if m.group(1) in SHELL_FENCES:
                line = text[: m.start()].count("\n") + 1
                cwd = re.match(r"# run: from (\S+?)/?\n", m.group(2))
                page_name = str(page.relative_to(ROOT))
                blocks.append(Block(page_name, line, block_commands(m.group(2)), cwd.group(1) if cwd else "."))
    return blocks


BLOCKS = doc_blocks()


def test_every_doc_command_has_a_treatment():
    """A new command on a page needs an entry in COMMANDS; an entry no page shows any more is removed."""
    shown = {c for b in BLOCKS for c in b.commands}
    assert sorted(shown - set(COMMANDS)) == [], "commands without a treatment in COMMANDS"
    assert sorted(set(COMMANDS) - shown) == [], "COMMANDS entries that no page shows"
    assert len(shown) > 50  # the pages were read: README, api, experiments, extending, gpu, wandb
    changed = [c for c, t in COMMANDS.items() if isinstance(t, Run) and (t.append or t.replace) and not t.why]
    assert changed == [], "a command run other than as written needs its reason (Run.why)"


def test_the_reader_joins_continuations_and_drops_comments():
    body = 'make x   # a comment\n# only a comment\npython -m a b=1 \\\n    c="# kept"  # gone\n\n'
    assert block_commands(body) == ("make x", 'python -m a b=1 c="# kept"')


def test_shell_variables_are_defined_in_their_block():
    """``$VAR`` in a command is assigned earlier in the same block (a reader copies one block), or is standard;
    make's own variables are written ``$(VAR)`` and expanded by make."""
    for block in BLOCKS:
        defined = set(STANDARD_VARIABLES)
        for command in block.commands:
            unquoted = re.sub(r"'[^']*'", "", command)
            used = set(re.findall(r"\$\{?([A-Za-z_]\w*)", unquoted))
            assert used <= defined, f"{block.id}: {command!r} uses ${sorted(used - defined)} defined nowhere above"
            defined |= set(re.findall(r"(?:^|export |\s)([A-Za-z_]\w*)=", command))


# -- the world ----------------------------------------------------------------------------------------------


def _pngs(folder: Path, n: int, colour: tuple[int, int, int], rng: np.random.Generator, ext: str = "png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = np.clip(np.asarray(colour) + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:04d}.{ext}")


def _sparse_pool(path: Path, n: int, rng: np.random.Generator) -> None:
    """An (n, 32, 32, 3) uint8 .npy whose first 512 images are noise and the rest zeros, stored sparse (the pool
    has its real size, which ``oe_size`` is checked against, at almost no disk cost)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pool = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 32, 32, 3))
    pool[:512] = rng.integers(0, 256, (512, 32, 32, 3), dtype=np.uint8)
    pool.flush()
    del pool


def _wrapper(path: Path, command: str) -> None:
    path.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    path.chmod(0o755)


def make_world(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A checkout-like folder ``tmp/world`` (its sources linked to this checkout) with tiny data, and the
    environment its commands run in."""
    world, shared, rng = tmp / "world", tmp / "shared" / "data", np.random.default_rng(0)
    world.mkdir()
    for name in (
        "src",
        "tests",
        "tools",
        "benchmarks",
        "notebooks",
        "setup.cfg",
        "pyproject.toml",
        "requirements.lock",
    ):
        (world / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "Makefile", world / "Makefile")
    # .venv/bin/python and the console commands: this checkout's code with the interpreter running the tests
    (world / ".venv" / "bin").mkdir(parents=True)
    _wrapper(world / ".venv" / "bin" / "python", sys.executable)
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    _wrapper(bin_dir / "python", sys.executable)
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    for line in filter(None, cfg["options.entry_points"]["console_scripts"].splitlines()):
        name, _, target = (part.strip() for part in line.partition("="))
        module = target.split(":")[0].removesuffix(".__main__")
        path = f'"${{PYTHONPATH:+$PYTHONPATH:}}{ROOT / "src"}"'  # as an editable install: after the caller's
        _wrapper(bin_dir / name, f"env PYTHONPATH={path} {sys.executable} -m {module}")
    # CIFAR-10 in torchvision's format: 10 train and 3 test images per class
    cifar = world / "data" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name, n in [*((f"data_batch_{i}", 20) for i in range(1, 6)), ("test_batch", 30)]:
        labels = [i % 10 for i in range(n)]
        data = np.stack([np.full(3072, 20 * k, np.uint8) for k in labels]) + rng.integers(0, 30, (n, 3072), np.uint8)
        with open(cifar / name, "wb") as fh:
            pickle.dump({"data": data, "labels": labels}, fh)
    _sparse_pool(world / "data" / "300K_random_images.npy", 300_000, rng)
    # $SHARED (the Makefile's default ../shared/data): the CIFAR-10 JPEG copy and the 30k OE pool
    jpeg = tmp / "jpeg" / "cifar10-jpeg"
    for k, name in enumerate(CIFAR10):
        for split, n in (("train", 6), ("test", 3)):
            _pngs(jpeg / split / name, n, (25 * k, 255 - 25 * k, 128), rng, ext="jpg")
    shared.mkdir(parents=True)
    with tarfile.open(shared / "cifar10-jpeg.tar.gz", "w:gz") as tar:
        tar.add(jpeg, arcname="cifar10-jpeg")
    _sparse_pool(shared / "tin32-oe-30k.npy", 30_000, rng)
    # the placeholders of the pages
    for folder in ("path/to/images", "images"):
        _pngs(world / folder, 4, (200, 40, 40), rng)
    for folder in ("path/to/photos", "photos"):
        for k, name in enumerate(("ok", "fine", "scratch")):
            _pngs(world / folder / name, 3, (40, 80 * k, 200), rng)
    (world / "JOB").symlink_to("runs/default/bce/normal_class=3,oe_size=256,seed=0")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "SHARED")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT / "src"),
        OE_AD_DATA=str(world / "data"),
        OE_AD_RUNS=str(world / "runs"),
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        HF_HUB_OFFLINE="1",
        OE_AD_PROGRESS_SECONDS="60",
    )
    return world, env


# -- what a command launches --------------------------------------------------------------------------------

LAUNCHERS = {"oe_ad.run": "config", "oe_ad.search": "search", "oe_ad.sweep": None}
CONSOLE = {"oe-ad-run": "oe_ad.run", "oe-ad-search": "oe_ad.search", "oe-ad-sweep": "oe_ad.sweep"}
SHELL_OPERATORS = {">", ">>", "&", "&&", "|", ";", "||"}


def launches(command: str, world: Path, env: dict[str, str]) -> list[tuple[str, list[str], bool, list[str]]]:
    """The oe_ad sweeps/jobs a command launches: (config name, overrides, multirun, config dirs) each.
    Shell variables are expanded from ``env``; make targets are asked with ``make -n`` what they run."""
    words = shlex.split(os.path.expandvars(command) if "$" in command else command)
    while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):  # VAR=value prefixes
        words.pop(0)
    cut = next((i for i, w in enumerate(words) if w in SHELL_OPERATORS or w.startswith(("2>", ">"))), len(words))
    words = words[:cut]
    if not words:
        return []
    if words[0] == "make":
        dry = subprocess.run(["make", "-n", *words[1:]], cwd=world, env=env, capture_output=True, text=True)
        assert dry.returncode == 0, f"make -n {' '.join(words[1:])}: {dry.stderr}"
        script = dry.stdout.replace("\\\n", " ")
        found = []
        for piece in re.split(r";|\n|&&", script):
            found += launches(piece.strip(), world, env) if " -m oe_ad." in piece else []
        return found
    if words[0] in CONSOLE:
        words = ["python", "-m", CONSOLE[words[0]], *words[1:]]
    if len(words) < 3 or words[1] != "-m" or words[2] not in LAUNCHERS:
        return []
    module, args = words[2], words[3:]
    config_dirs, overrides, multirun, search, at = [], [], module == "oe_ad.sweep", False, []
    it = enumerate(args)
    for i, a in it:
        if a in ("--config-dir", "-cd"):
            config_dirs.append(str(world / next(it)[1]))
        elif a in ("-m", "--multirun"):
            multirun = True
        elif a == "--search":
            search = True
        elif a.startswith("-"):
            continue  # --check and other flags of oe-ad-sweep
        else:
            overrides.append(a)
            at.append(i)
    # argparse (Hydra's and oe-ad-sweep's) takes the overrides as one run of words: `a=1 -m b=2` is an error
    assert not at or at == list(range(at[0], at[-1] + 1)), f"{command!r}: overrides on both sides of a flag"
    name = LAUNCHERS[module] or ("search" if search else "config")
    return [(name, overrides, multirun, config_dirs)]


@pytest.fixture(scope="module")
def validation_world(tmp_path_factory):
    world, env = make_world(tmp_path_factory.mktemp("validate"))
    made = subprocess.run(["make", "data"], cwd=world, env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    env["SHARED"] = str(world.parent / "shared" / "data")  # for `launches`: what the pages' `export SHARED` sets
    # Stand-ins for the datasets the Validate commands name: the check reads no image, but a job's config is
    # refused when its data.root / oe.root folder or oe.path file does not exist.
    for folder in ("data/imagenet30", "data/imagenet22k"):
        (world / folder).mkdir(parents=True, exist_ok=True)
    (world / "data" / "tiny_images.bin").touch()
    return world, env


def validated_commands() -> list[tuple[str, Block]]:
    """Every Validate command and every Run command that launches jobs (as written), once each."""
    seen: dict[str, Block] = {}
    for block in BLOCKS:
        for command in block.commands:
            if isinstance(COMMANDS.get(command), (Validate, Run)):
                seen.setdefault(command, block)
    return list(seen.items())


def test_every_validated_command_launches_jobs_that_pass_the_schema(validation_world, monkeypatch):
    """Each job of each command is composed and checked (oe_ad.sweep.check) in the world: nothing trains."""
    from oe_ad.sweep import check

    world, env = validation_world
    monkeypatch.chdir(world)
    for key in ("OE_AD_DATA", "OE_AD_RUNS", "SHARED"):
        monkeypatch.setenv(key, env[key])
    problems, counts, checked = [], {}, {}
    for command, block in validated_commands():
        found = launches(command, world, env)
        if isinstance(COMMANDS[command], Validate):
            assert found, f"{block.id}: {command!r} is marked Validate but launches no oe_ad job"
        for name, overrides, multirun, config_dirs in found:
            if any(d.endswith("my_conf") for d in config_dirs):
                continue  # docs/extending.md's own configs exist only when its block runs (tests/test_extending.py)
            key = (name, tuple(overrides), multirun)
            if key not in checked:
                checked[key] = check(overrides, name, [Path(d) for d in config_dirs], multirun=multirun)
            jobs, failures = checked[key]
            counts[command] = counts.get(command, 0) + len(jobs)
            problems += [f"{block.id}: {command}\n    job {' '.join(job)}: {error}" for job, error in failures[:3]]
            if len(failures) > 3:
                problems.append(f"    ... and {len(failures) - 3} more failing jobs of {len(jobs)}")
    assert not problems, "\n".join(problems)
    # the sizes the pages state
    assert counts["python -m oe_ad.run method=bce oe_size=256 -m"] == 100
    assert counts["make fig2-cifar10"] == 3800
    offline = [c for c in counts if c.startswith('make fig2-cifar10 ARGS="data=folder')]
    assert [counts[c] for c in offline] == [3200]


def test_the_check_finds_the_paper_sizes_larger_than_the_offline_pool(validation_world, monkeypatch):
    """The failure this test exists for: Figure 2's OE sizes 2^15..2^17 on the 30,000-image pool."""
    from oe_ad.sweep import check

    world, env = validation_world
    monkeypatch.chdir(world)
    monkeypatch.setenv("OE_AD_DATA", env["OE_AD_DATA"])
    pool = f"{env['SHARED']}/tin32-oe-30k.npy"
    offline = ["experiment=fig2-cifar10", "data=folder", "data.root=data/cifar10-jpeg", "oe=npy", f"oe.path={pool}"]
    jobs, failures = check([*offline, "normal_class=0,9", "seed=0"])
    assert len(jobs) == 2 * 19 * 2 and len(failures) == 2 * 3 * 2  # methods x OE sizes x classes
    assert {next(o for o in job if o.startswith("oe_size=")) for job, _ in failures} == {
        "oe_size=32768",
        "oe_size=65536",
        "oe_size=131072",
    }
    assert all("larger than the OE pool" in error and "(30000 images)" in error for _, error in failures)


# -- running them -------------------------------------------------------------------------------------------


def as_run(command: str, treatment: Run) -> str:
    """The command as the world runs it: ``replace`` applied, ``append`` added: to ARGS for make, else next to
    the command's own overrides (Hydra takes the overrides as one run of words: none may follow a flag that
    follows them, as in ``oe-ad-run a=1 -m b=2``)."""
    for old, new in treatment.replace:
        assert old in command, f"{old!r} not in {command!r}"
        command = command.replace(old, new)
    if not treatment.append:
        return command
    if command.startswith("make "):
        if 'ARGS="' in command:
            assert command.endswith('"'), f"ARGS is not the last word of {command!r}"
            return command[:-1] + f' {treatment.append}"'
        return f'{command} ARGS="{treatment.append}"'
    words = command.split(" ")
    first = next((i for i, w in enumerate(words) if i > 0 and "=" in w and not w.startswith("-")), len(words))
    return " ".join([*words[:first], treatment.append, *words[first:]])


def block_script(block: Block) -> str:
    lines = ["set -euo pipefail"]
    for n, command in enumerate(block.commands):
        treatment = COMMANDS[command]
        if isinstance(treatment, Run):
            lines += [f"echo {shlex.quote(f'>>> [{n}] {as_run(command, treatment)}')} >&2", as_run(command, treatment)]
        else:
            lines.append(f": {type(treatment).__name__.lower()}: {shlex.quote(command)}")
    return "\n".join(lines) + "\n"


RUN_BLOCKS = [b for b in BLOCKS if any(isinstance(COMMANDS.get(c), Run) for c in b.commands)]


@pytest.fixture(scope="module")
def run_world(tmp_path_factory):
    """One world for all pages: the README's blocks first, in page order (the API page uses its job)."""
    world, env = make_world(tmp_path_factory.mktemp("run"))
    files = re.findall(r"```[a-z]*\n# file: (\S+)\n(.*?)```", (ROOT / "docs" / "extending.md").read_text(), re.S)
    for rel, text in files:  # docs/extending.md's files, where its block runs
        (world / "my_project" / rel).parent.mkdir(parents=True, exist_ok=True)
        (world / "my_project" / rel).write_text(text)
    return world, env


def test_the_as_run_forms_of_the_table():
    assert as_run("make data", Run()) == "make data"
    assert as_run('make x ARGS="a=1"', Run(append="b=2")) == 'make x ARGS="a=1 b=2"'
    assert as_run("make x", Run(append="b=2")) == 'make x ARGS="b=2"'
    assert as_run("python -m oe_ad.run a=1,2", Run(append="b=2", replace=(("a=1,2", "a=1"),))) == (
        "python -m oe_ad.run b=2 a=1"
    )
    assert as_run("python -m oe_ad.run a=1 -m", Run(append="b=2")) == "python -m oe_ad.run b=2 a=1 -m"
    assert as_run("oe-ad-run -m a=1", Run(append="b=2")) == "oe-ad-run -m b=2 a=1"
    assert as_run("make bench", Run(append="--steps 2")) == 'make bench ARGS="--steps 2"'


@pytest.mark.slow
@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[b.id for b in RUN_BLOCKS])
def test_doc_block_runs_as_written(block, run_world):
    world, env = run_world
    proc = subprocess.run(
        ["bash", "-c", block_script(block)],
        cwd=world / block.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, f"{block.id} failed:\n{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}"
