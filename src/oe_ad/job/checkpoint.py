"""Checkpoints in a job folder, one format and one module for every fitter: ``last.ckpt`` to resume an interrupted
job, ``model.pt`` for inference. Both are written atomically with their SHA-256 beside them and loaded weights-only.

``last.ckpt`` is a :class:`TrainingState`: the method's weights, its optimiser state keyed by parameter name, the
schedule, the epochs and steps done, the per-epoch history and the training time, tagged with the config hash.
The Lightning fitter and the stack fitter write and read the same format (a member of a stack is a job), so a job
interrupted under one launcher resumes under the other. ``model.pt`` is what ``oe-ad-predict`` needs and nothing
more: the resolved config (method, net, image size), the normalisation and the weights (frozen pretrained ones are
rebuilt from the config rather than copied into every job folder), the class names and the distribution of the
normal training images' scores (``normal_scores``: thresholds).
"""

import collections
import logging
import os
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import atomic_open, file_sha256
from ..errors import OEADError

LAST_CKPT = "last.ckpt"
MODEL_FILE = "model.pt"
CHECKSUM_SUFFIX = ".sha256"  # beside each checkpoint: last.ckpt.sha256 holds the SHA-256 of last.ckpt
HASH_KEY = "oe_ad_config_hash"
RESUME_FORMAT = 2  # 1: Lightning's own checkpoint or the stack's, before they became one
MODEL_FORMAT = 1
SAFE_GLOBALS = [collections.Counter, collections.OrderedDict, collections.defaultdict]  # MultiStepLR's milestones
log = logging.getLogger(__name__)


@dataclass
class TrainingState:
    """What resuming a job needs, whichever fitter wrote it. ``optimizer``: ``{"state": {parameter name: its
    moments}, "param_groups": [hyper-parameters, e.g. the current lr]}``; ``history``: per epoch ``train/lr``,
    ``train/loss``, ``train/auroc``."""

    epochs_done: int
    global_step: int
    state_dict: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    history: list[dict[str, float | None]] = field(default_factory=list)
    train_time_s: float = 0.0


# -- files with a checksum ------------------------------------------------------------------------------------------
def write_verified(path: Path, payload: Any) -> None:
    """``payload`` to ``path`` with its SHA-256 in ``path.sha256``, so that a kill at any moment leaves a pair that
    verifies: the new digest joins the old one in the checksum file before the new file replaces the old, and the
    old digest leaves only after."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        torch.save(payload, tmp)
        new = file_sha256(tmp)
        write_checksum(path, [new, *digests(path)[:1]])
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    write_checksum(path, [new])


def write_checksum(path: Path, digests_: list[str] | None = None) -> None:
    """``path.sha256``: the file's SHA-256 (or ``digests_``, each a line), written atomically."""
    with atomic_open(Path(f"{path}{CHECKSUM_SUFFIX}")) as fh:
        fh.writelines(f"{d}  {Path(path).name}\n" for d in digests_ or [file_sha256(path)])


def digests(path: Path) -> list[str]:
    """The digests ``path.sha256`` holds (none when it is missing or not a checksum file)."""
    try:
        lines = Path(f"{path}{CHECKSUM_SUFFIX}").read_text(encoding="ascii").splitlines()
    except (OSError, ValueError):
        return []
    return [line.split()[0] for line in lines if line.split() and len(line.split()[0]) == 64]


def checksum_ok(path: Path) -> tuple[bool, str]:
    """Whether ``path`` matches a checksum written beside it (and why not)."""
    side = Path(f"{path}{CHECKSUM_SUFFIX}")
    if not side.exists():
        return False, f"no checksum file {side.name}"
    known = digests(path)
    if not known:
        return False, f"unreadable checksum file {side.name}"
    return (True, "") if file_sha256(path) in known else (False, "checksum mismatch (corrupted)")


def load_safely(path: Path) -> Any:
    """``torch.load`` restricted to tensors, plain containers and the few classes a schedule holds: a planted
    pickle cannot run code."""
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        return torch.load(path, map_location="cpu", weights_only=True)


# -- last.ckpt ----------------------------------------------------------------------------------------------------
def save_training_state(job_dir: Path, config_hash: str, state: TrainingState) -> None:
    fields_ = {f.name: getattr(state, f.name) for f in fields(state)}  # not asdict: it rebuilds a Counter wrongly
    write_verified(Path(job_dir) / LAST_CKPT, {HASH_KEY: config_hash, "format": RESUME_FORMAT, **fields_})


def load_training_state(job_dir: Path | None, config_hash: str) -> TrainingState | None:
    """``job_dir/last.ckpt`` if it passes its checksum, loads safely, is of this format and was written by this
    config; else None, with one warning: the job trains from scratch."""
    path = Path(job_dir or ".") / LAST_CKPT
    if job_dir is None or not path.exists():
        return None
    ok, why = checksum_ok(path)
    if ok:
        try:
            saved = load_safely(path)
        except Exception as e:  # an unreadable checkpoint must not kill the job: it just trains from scratch
            ok, why = False, f"unreadable ({str(e).splitlines()[0][:200]})"
    if ok and (not isinstance(saved, dict) or saved.get("format") != RESUME_FORMAT):
        ok, why = False, "written by an older oe_ad, in another format"
    if ok and saved.get(HASH_KEY) != config_hash:
        ok, why = False, f"written by another config (hash {saved.get(HASH_KEY)})"
    if not ok:
        log.warning("ignoring %s: %s; training from scratch", path, why)
        return None
    log.info("resuming from %s (%d epoch(s) done)", path, saved["epochs_done"])
    return TrainingState(**{k: v for k, v in saved.items() if k not in (HASH_KEY, "format")})


def drop_training_state(job_dir: Path) -> None:
    for name in (LAST_CKPT, f"{LAST_CKPT}{CHECKSUM_SUFFIX}"):
        (Path(job_dir) / name).unlink(missing_ok=True)


def trained_names(method: nn.Module) -> list[str]:
    """The trainable parameters' names, in the order the method's optimiser holds them."""
    return [name for name, p in method.named_parameters() if p.requires_grad]


def optimizer_by_name(method: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """A single model's optimiser state with its parameters named (the checkpoint's form)."""
    saved, names = optimizer.state_dict(), trained_names(method)
    groups = [{k: v for k, v in g.items() if k != "params"} for g in saved["param_groups"]]
    return {"state": {names[i]: s for i, s in saved["state"].items()}, "param_groups": groups}


def optimizer_by_index(method: nn.Module, saved: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's optimiser state as ``torch.optim.Optimizer.load_state_dict`` takes it for ``method``."""
    names = trained_names(method)
    index = {name: i for i, name in enumerate(names)}
    (group,) = saved["param_groups"]
    return {
        "state": {index[n]: s for n, s in saved["state"].items()},
        "param_groups": [{**group, "params": list(range(len(names)))}],
    }


# -- model.pt -----------------------------------------------------------------------------------------------------
def save_model(
    path: Path,
    module: torch.nn.Module,
    config: dict[str, Any],
    preprocessing: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write what inference needs: config, preprocessing and the weights + buffers (frozen ones only where the net
    rebuilds them from its config: CLIP's, ``frozen_from_config``); ``extra``: plain-data fields: ``facts`` (what the
    method was prepared with, ``methods.base.Facts.saved``: e.g. CLIP's normal class names), ``classes``,
    ``normal_scores`` (thresholds)."""
    rebuilt = getattr(getattr(module, "net", None), "frozen_from_config", False)
    frozen = sorted(n for n, p in module.named_parameters() if not p.requires_grad) if rebuilt else []
    state = {k: v.detach().cpu() for k, v in module.state_dict().items() if k not in set(frozen)}
    payload = {**(extra or {}), "format": MODEL_FORMAT, "config": config, "preprocessing": preprocessing}
    write_verified(path, {**payload, "state_dict": state, "frozen": frozen})


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """Load a ``model.pt`` (or the one in a job folder) as plain data; one-line errors name the file."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise OEADError(f"checkpoint={path}: no such file (a finished job folder holds {MODEL_FILE})")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise OEADError(f"checkpoint={path}: not a readable {MODEL_FILE} ({e.__class__.__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise OEADError(f"checkpoint={path}: not an oe_ad {MODEL_FILE} (format {MODEL_FORMAT})")
    return payload


def load_weights(module: torch.nn.Module, payload: dict[str, Any], path: str | os.PathLike) -> None:
    """Load saved weights into a freshly built module; only the frozen (pretrained) ones may be absent."""
    missing, unexpected = module.load_state_dict(payload["state_dict"], strict=False)
    missing = set(missing) - set(payload["frozen"])
    if missing or unexpected:
        raise OEADError(
            f"checkpoint={path}: weights do not fit the model built from its config "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )
