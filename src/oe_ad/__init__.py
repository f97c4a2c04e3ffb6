"""oe_ad: image anomaly detection with Outlier Exposure (Liznerski et al., TMLR 2022).

From Python (docs/research.md): ``oe_ad.fit(...)`` trains one job as ``oe-ad-run`` does, ``oe_ad.fit_all(...)`` a
sweep, ``oe_ad.load_model(job_folder)`` loads a trained job's model (imported on first use: ``import oe_ad`` stays
light).
"""

from .version import package_version

__version__ = package_version()
__all__ = ["fit", "fit_all", "load_model"]


def __getattr__(name: str):
    if name in ("fit", "fit_all"):
        from . import api

        return getattr(api, name)
    if name == "load_model":
        from .inference import load_model

        return load_model
    raise AttributeError(f"module 'oe_ad' has no attribute {name!r}")
