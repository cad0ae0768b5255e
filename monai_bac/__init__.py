"""monai-bac: segmentation of breast arterial calcifications (BAC) in raw mammograms, for MONAI.

After Wang et al., "Improving Segmentation of Breast Arterial Calcifications from Digital
Mammography: Good Annotation Is All You Need".
"""

__version__ = "0.1.0"
