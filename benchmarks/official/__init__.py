"""Run the paper's own code (liznerski/eoe) on a local CPU under a written-down protocol; see README.md here."""
