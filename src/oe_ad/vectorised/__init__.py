"""Vectorised training: M independent CNN32 models trained in one fused step (grouped convolutions).

``stacked.py`` holds the M-model network, ``objectives.py`` the methods' losses and scores over a model axis,
``trainer.py`` the training loop with per-model data, ``memory.py`` how many models fit, ``probe.py`` which stack
size and convolution mode train fastest on the device (measured), ``grouping.py`` which jobs can share a step,
``launcher.py`` the Hydra launcher (``launcher=vectorised``) and ``fitness.py`` the single-OE search's fitness
function. This package's ``__init__`` stays light: the Hydra plugin reads :data:`CONV_MODES` at every start-up.
"""

# grouped: one convolution with groups=M (one kernel launch per layer: what a GPU needs); split: each model's layers
# in turn on slices of the same tensors, the very kernels a single CNN32 runs; auto: the faster, measured
# (probe.py), where the launcher stacks models (StackedCNN32 alone: split on CPU, grouped on a GPU).
CONV_MODES = ("auto", "split", "grouped")
