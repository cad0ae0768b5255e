from lib.scoring.bac import CORRECTION_KEY, TTA_KEY, LabelCorrectionChange, TTAUncertainty  # noqa: F401
