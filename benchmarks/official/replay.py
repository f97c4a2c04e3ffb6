"""Replay batches recorded by oe_ad through the paper's own training step (liznerski/eoe), from the same weights.

    python benchmarks/official/replay.py --eoe EOE_CHECKOUT --record RECORD.pt --out REPLAY.pt

``step_compare.py`` writes RECORD.pt (oe_ad's initial weights, every training batch after augmentation and
normalisation, the test inputs) and runs this file in the paper's code's environment. It imports nothing from
oe_ad: the network is eoe's ``CNN32`` (``bias=True``, reset by ``weight_reset`` as ``ADTrainer.run`` does, then
given the recorded weights), the loss and the score are the eoe trainer's own methods, and the optimiser and
schedule are those of ``ADTrainer.train_cls`` (Adam, ``MultiStepLR`` with gamma 0.1 stepped once per epoch).
REPLAY.pt holds the loss of every step and the test scores.
"""

import argparse
import importlib
import sys
from pathlib import Path

TRAINERS = {  # oe_ad's method name -> eoe's trainer (module, class)
    "hsc": ("eoe.training.hsc", "HSCTrainer"),
    "bce": ("eoe.training.bce", "BCETrainer"),
    "focal": ("eoe.training.focal", "FocalTrainer"),
    "deep_sad": ("eoe.training.dsad", "DSADTrainer"),
}
CLASSIFIERS = ("bce", "focal")  # train_cifar.py: CNN32(bias=True, clf=objective in ('bce', 'focal'))
NOMINAL_LABEL = 0  # eoe's label of the normal images (anomalous/OE: 1)


def replay(record: dict) -> dict:
    import numpy as np
    import torch

    if not hasattr(np, "infty"):  # NumPy 2 removed the alias eoe's signatures use (as patches.py)
        np.infty = np.inf
    from eoe.models.cnn import CNN32
    from eoe.training.ad_trainer import weight_reset

    module, name = TRAINERS[record["method"]]
    trainer = getattr(importlib.import_module(module), name)
    model = CNN32(bias=True, clf=record["method"] in CLASSIFIERS)
    model.apply(weight_reset)
    model.load_state_dict(record["init"])
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=record["lr"], weight_decay=record["weight_decay"], amsgrad=False)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, record["milestones"], 0.1)
    losses = []
    for epoch in record["epochs"]:
        for x, is_normal in epoch:
            labels = torch.where(is_normal, NOMINAL_LABEL, 1 - NOMINAL_LABEL)
            opt.zero_grad()
            loss = trainer.loss(None, model(x), labels, None, nominal_label=NOMINAL_LABEL)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
    model.eval()
    with torch.no_grad():
        scores = torch.cat(
            [trainer.compute_anomaly_score(None, model(x), None, nominal_label=NOMINAL_LABEL) for x in record["test"]]
        )
    return {"losses": losses, "scores": scores.reshape(-1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eoe", type=Path, required=True, help="a checkout of liznerski/eoe")
    parser.add_argument("--record", type=Path, required=True, help="the batches step_compare.py recorded")
    parser.add_argument("--out", type=Path, required=True, help="where to write the replay's losses and scores")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != Path(here)]  # no sibling module shadows eoe's
    sys.path.insert(0, str((args.eoe / "src").resolve()))
    import torch

    torch.set_num_threads(args.threads)
    torch.save(replay(torch.load(args.record, weights_only=True)), args.out)


if __name__ == "__main__":
    main()
