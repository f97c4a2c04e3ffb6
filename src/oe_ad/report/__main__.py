"""``python -m oe_ad.report DIR [--experiment NAME] [--wandb]`` (see :mod:`oe_ad.report.cli`)."""

import sys

from .cli import main

sys.exit(main())
