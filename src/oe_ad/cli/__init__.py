"""What the commands share: the argparse style (``args``) and Hydra's per-sweep callback (``sweep_summary``)."""
