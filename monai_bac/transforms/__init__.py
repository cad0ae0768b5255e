"""MONAI transforms of monai-bac: each an array class and a dictionary class (``...d``).

| transform | paper | reads | writes |
|---|---|---|---|
| :class:`BreastRegion` | Fig. 2 | ``image`` | ``breast_map`` |
| :class:`LogGammaNormalize` | Eq. (1)-(2) | ``image``, ``breast_map`` | ``image`` |
| :class:`AutoGammaNormalize` | Eq. (3) | ``image``, ``breast_map`` | ``image`` |
| :class:`DensityMap` | Eq. (4) | ``image``, ``breast_map`` | ``density`` |
| :class:`CalcificationThickness` | Eq. (5) | ``density``, ``breast_map`` | ``calc_thickness`` |
| :class:`CorrectBACLabel` | Sec. 3.3 | ``label``, ``calc_thickness`` | ``label`` |

See docs/TRANSFORMS.md for a ``Compose`` example.
"""

from monai_bac.transforms.breast_region import BreastRegion, BreastRegionD, BreastRegiond, BreastRegionDict  # noqa: F401
from monai_bac.transforms.intensity import (
    AutoGammaNormalize,
    AutoGammaNormalized,
    AutoGammaNormalizeD,
    AutoGammaNormalizeDict,
    LogGammaNormalize,
    LogGammaNormalized,
    LogGammaNormalizeD,
    LogGammaNormalizeDict,
)
from monai_bac.transforms.label import (
    CorrectBACLabel,
    CorrectBACLabeld,
    CorrectBACLabelD,
    CorrectBACLabelDict,
    correction_meta,
    removed_components,
)
from monai_bac.transforms.io import SaveBACd, SaveBACReportd, SaveBACSegd  # noqa: F401
from monai_bac.transforms.pipeline import (  # noqa: F401
    NORMALISATIONS,
    CheckMammogramd,
    InputRejected,
    DefaultKeyd,
    DropEmptyMetad,
    NormalizeMammogramd,
    ResizeWithInverseMode,
    ResizeWithInverseModed,
    UpdateSpacingd,
)
from monai_bac.transforms.quantify import QuantifyBACd  # noqa: F401
from monai_bac.transforms.utils import ForeignLoaderError, ReorientedImageError  # noqa: F401
from monai_bac.transforms.physics import (
    CalcificationThickness,
    CalcificationThicknessd,
    CalcificationThicknessD,
    CalcificationThicknessDict,
    DensityMap,
    DensityMapd,
    DensityMapD,
    DensityMapDict,
    ThicknessMismatchWarning,
    BreastImplantWarning,
)

__all__ = [
    "BreastRegion",
    "BreastRegiond",
    "BreastRegionD",
    "BreastRegionDict",
    "LogGammaNormalize",
    "LogGammaNormalized",
    "LogGammaNormalizeD",
    "LogGammaNormalizeDict",
    "AutoGammaNormalize",
    "AutoGammaNormalized",
    "AutoGammaNormalizeD",
    "AutoGammaNormalizeDict",
    "DensityMap",
    "DensityMapd",
    "DensityMapD",
    "DensityMapDict",
    "ThicknessMismatchWarning",
    "BreastImplantWarning",
    "CalcificationThickness",
    "CalcificationThicknessd",
    "CalcificationThicknessD",
    "CalcificationThicknessDict",
    "CorrectBACLabel",
    "CorrectBACLabeld",
    "CorrectBACLabelD",
    "CorrectBACLabelDict",
    "correction_meta",
    "NORMALISATIONS",
    "SaveBACd",
    "SaveBACSegd",
    "SaveBACReportd",
    "QuantifyBACd",
    "CheckMammogramd",
    "InputRejected",
    "NormalizeMammogramd",
    "DefaultKeyd",
    "UpdateSpacingd",
    "DropEmptyMetad",
    "ResizeWithInverseMode",
    "ResizeWithInverseModed",
    "removed_components",
    "ForeignLoaderError",
    "ReorientedImageError",
]
