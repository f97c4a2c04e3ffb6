"""The job lifecycle: validate once -> lock -> reuse -> claim -> fit and test -> finish (``loop``), the
Lightning fitter (``lightning``) and what both fitters share: checkpoints, records, scores, the meter, locks."""
