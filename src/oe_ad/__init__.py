"""oe_ad: image anomaly detection with Outlier Exposure (Liznerski et al., TMLR 2022)."""

__version__ = "0.1.0"
