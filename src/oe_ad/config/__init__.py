"""Where the package's Hydra configs live and which of their folders are config groups (the config layer:
the commands, the schema and the experiment list read it; it imports nothing of the package)."""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# Config groups a command line chooses from (``method=hsc``, ``search/fitness=vectorised``).
GROUPS = ("method", "data", "oe", "net", "trainer", "logger", "experiment", "launcher", "filter", "search/fitness")
