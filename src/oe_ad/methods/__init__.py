"""One LightningModule per method; each is a loss and a score over :class:`AnomalyDetector`."""
