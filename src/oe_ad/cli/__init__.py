"""What the commands share: the Hydra commands' entrance (``entrance``: checks, one-line errors, Hydra's callback),
SLURM arrays (``slurm``) and the argparse style of the others (``args``)."""
