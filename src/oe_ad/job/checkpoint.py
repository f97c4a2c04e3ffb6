"""Checkpoints in a job folder: ``last.ckpt`` to resume an interrupted job, ``model.pt`` for inference.

``last.ckpt`` is Lightning's full training state (weights, optimiser, schedule, loop counters), written
atomically every N epochs (``callbacks.LastCheckpoint``) and tagged with the config hash, so a restarted job only
resumes from its own config. ``model.pt`` is what ``python -m oe_ad.predict`` needs and nothing more: the resolved
config (method, net, image size), the normalisation and the weights (frozen pretrained ones are rebuilt from the
config rather than copied into every job folder); and the class names and the distribution of the normal
training images' scores (``normal_scores``: thresholds), optional fields that older files lack.
"""

import collections
import logging
import os
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_open, file_sha256
from ..errors import OEADError

LAST_CKPT = "last.ckpt"
CHECKSUM_SUFFIX = ".sha256"  # beside each checkpoint: last.ckpt.sha256 holds the SHA-256 of last.ckpt
# What a Lightning training checkpoint holds besides tensors and plain containers (MultiStepLR's milestones).
SAFE_GLOBALS = [collections.Counter, collections.OrderedDict, collections.defaultdict]
MODEL_FILE = "model.pt"
HASH_KEY = "oe_ad_config_hash"
KIND_KEY = "oe_ad_kind"  # lightning: a single job's last.ckpt; stack: a vectorised member's
MODEL_FORMAT = 1
log = logging.getLogger(__name__)


def write_checksum(path: Path, digest: str | None = None) -> None:
    """``path.sha256`` with the file's SHA-256, written atomically."""
    with atomic_open(Path(f"{path}{CHECKSUM_SUFFIX}")) as fh:
        fh.write(f"{digest or file_sha256(path)}  {Path(path).name}\n")


def checksum_ok(path: Path) -> tuple[bool, str]:
    """Whether ``path`` matches the checksum written beside it (and why not)."""
    side = Path(f"{path}{CHECKSUM_SUFFIX}")
    try:
        expected = side.read_text(encoding="ascii").split()[0]
    except (OSError, IndexError):
        return False, f"no checksum file {side.name}"
    except ValueError:  # binary garbage: not a checksum line
        return False, f"unreadable checksum file {side.name}"
    return (True, "") if file_sha256(path) == expected else (False, "checksum mismatch (corrupted)")


def load_checkpoint_safely(path: Path, **kwargs: Any) -> dict[str, Any]:
    """``torch.load`` restricted to tensors, plain containers and the few classes Lightning stores: a planted
    pickle cannot run code."""
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        return torch.load(path, map_location="cpu", weights_only=True, **kwargs)


def verified_checkpoint(job_dir: Path, config_hash: str, kind: str, mmap: bool = False) -> dict[str, Any] | None:
    """``job_dir/last.ckpt`` loaded (weights only) if it passes its checksum, loads safely, was written by this
    config and is of ``kind`` (``lightning``: a single job's; ``stack``: a vectorised member's); else None, with
    one warning: the job trains from scratch."""
    path = Path(job_dir) / LAST_CKPT
    if not path.exists():
        return None
    ok, why = checksum_ok(path)
    if not ok:
        log.warning("ignoring %s: %s; training from scratch", path, why)
        return None
    try:
        ckpt = load_checkpoint_safely(path, mmap=mmap)
    except Exception as e:  # an unreadable checkpoint must not kill the job: it just trains from scratch
        log.warning("ignoring unreadable %s (%s); training from scratch", path, str(e).splitlines()[0][:200])
        return None
    if ckpt.get(HASH_KEY) != config_hash:
        log.warning("ignoring %s: written by another config (hash %s); training from scratch", path, ckpt.get(HASH_KEY))
        return None
    if ckpt.get(KIND_KEY, "lightning") != kind:
        writer = {"stack": "launcher=vectorised", "lightning": "a single job"}.get(ckpt.get(KIND_KEY), "?")
        log.warning(
            "ignoring %s: written by %s, which this launcher cannot resume; training from scratch", path, writer
        )
        return None
    log.info("resuming from %s (%d epoch(s) done)", path, ckpt.get("epoch", -1) + (kind == "lightning"))
    return ckpt


def resume_path(job_dir: Path, config_hash: str) -> Path | None:
    """``job_dir/last.ckpt`` if a single job can resume from it (:func:`verified_checkpoint`), else None."""
    ok = verified_checkpoint(job_dir, config_hash, "lightning", mmap=True) is not None  # mmap: reads the tags only
    return Path(job_dir) / LAST_CKPT if ok else None


def write_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """``payload`` to ``path`` with its checksum beside it, both atomically (a kill mid-write leaves the previous
    checkpoint intact, or one that fails its checksum and is ignored)."""
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)
    write_checksum(path)


def drop_last_checkpoint(job_dir: Path) -> None:
    (Path(job_dir) / LAST_CKPT).unlink(missing_ok=True)
    (Path(job_dir) / f"{LAST_CKPT}{CHECKSUM_SUFFIX}").unlink(missing_ok=True)


def save_model(
    path: Path,
    module: torch.nn.Module,
    config: dict[str, Any],
    preprocessing: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write what inference needs, atomically: config, preprocessing and the trainable weights + buffers;
    ``extra``: plain-data fields: ``facts`` (what the method was prepared with, ``methods.base.Facts.saved``: e.g.
    CLIP's normal class names), ``classes``, ``normal_scores`` (thresholds)."""
    frozen = sorted(n for n, p in module.named_parameters() if not p.requires_grad)
    skip = set(frozen)
    state = {k: v.detach().cpu() for k, v in module.state_dict().items() if k not in skip}
    payload = {
        **(extra or {}),
        "format": MODEL_FORMAT,
        "config": config,
        "preprocessing": preprocessing,
        "state_dict": state,
        "frozen": frozen,
    }
    with atomic_open(path, "wb") as fh:
        torch.save(payload, fh)
    write_checksum(path)


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
