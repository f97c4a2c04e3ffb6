"""oe_ad: image anomaly detection with Outlier Exposure (Liznerski et al., TMLR 2022)."""

from .version import package_version

__version__ = package_version()
