"""Vectorised training: M independent CNN32 models trained in one fused step (grouped convolutions).

``stacked.py`` holds the M-model network, ``objectives.py`` the methods' losses and scores over a model axis,
``trainer.py`` the training loop with per-model data, ``memory.py`` how many models fit, ``grouping.py``
which jobs can share a step, ``launcher.py`` the Hydra launcher (``launcher=vectorised``) and
``fitness.py`` the single-OE search's fitness function.
"""
