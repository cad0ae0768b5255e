"""Screening or diagnostic view: what a mammogram's view modifiers and geometry say.

The paper's method, and every transform and summary here, is built for the screening views: the
cranio-caudal and medio-lateral oblique views of each breast, the whole compressed breast in
contact with the breast support, behind an anti-scatter grid. A diagnostic work-up in the same
study adds views that are not:

- a **magnification** view lifts the breast on a stand towards the tube (a magnification factor
  of 1.5-2.0, no grid, an air gap in its place), so every length at the detector is that factor
  times its length in the breast;
- a **spot compression** view presses a small paddle on one part of the breast: the breast
  outline, its uncompressed rim and its pectoral muscle are mostly out of the field, and the
  thickness under the paddle is not the breast's.

Their BAC length and calcium would be read as if they were another screening view of the same
breast (and, magnified, the largest). DICOM says which is which in ViewModifierCodeSequence
(0054,0222) (nested in ViewCodeSequence (0054,0220); CID 4015 "View Modifier for Mammography")
and in EstimatedRadiographicMagnificationFactor (0018,1114), source-to-detector over
source-to-breast distance: about 1.0-1.1 in contact, :data:`MAGNIFICATION_GEOMETRY` or more on a
magnification stand. Other modifiers (implant displaced, rolled, tangential, cleavage, axillary
tail, nipple in profile, ...) keep the contact geometry of a full-field view and are only recorded.
"""

from __future__ import annotations

import re

from pydicom.sr.codedict import codes

__all__ = [
    "DIAGNOSTIC_MODIFIERS",
    "MAGNIFICATION_GEOMETRY",
    "diagnostic_view_reason",
    "modifier_code",
    "modifier_name",
]

#: the view modifiers (CID 4015 meanings, upper case) whose image is not a screening view
DIAGNOSTIC_MODIFIERS = ("MAGNIFICATION", "SPOT COMPRESSION")
#: EstimatedRadiographicMagnificationFactor (0018,1114) from which the geometry is a
#: magnification stand's: contact views read 1.0-1.1 (the breast's mid-plane a few cm above the
#: detector, 65-70 cm from the focal spot), magnification stands 1.5-2.0
MAGNIFICATION_GEOMETRY = 1.3

# CID 4015 keywords of pydicom's code dictionary, by code value and by meaning in upper case;
# the older SNOMED RT codes (R-102D6 ...) are read through their meaning
_CID_4015 = ("AnteriorCompression", "AxillaryTail", "AxillaryTissue", "Cleavage", "ImplantDisplaced",
             "InfraMammaryFold", "Magnification", "NippleInProfile", "RolledInferior", "RolledLateral",
             "RolledMedial", "RolledSuperior", "SpotCompression", "Tangential")
_CODES = tuple(getattr(codes.SCT, keyword) for keyword in _CID_4015)


def _canonical(text: str) -> str:
    return " ".join(re.sub(r"[-_]", " ", text).upper().split())


_NAME_BY_VALUE = {code.value: _canonical(code.meaning) for code in _CODES}
_CODE_BY_NAME = {_canonical(code.meaning): code for code in _CODES}


def modifier_name(value: str | None, meaning: str | None) -> str | None:
    """A ViewModifierCodeSequence item's name: the CID 4015 meaning of its code, else its own
    CodeMeaning, else None; upper case, hyphens and underscores as spaces ("INFRA MAMMARY FOLD")."""
    if value and value in _NAME_BY_VALUE:
        return _NAME_BY_VALUE[value]
    return _canonical(meaning) if meaning and meaning.strip() else None


def modifier_code(name: str):
    """The SNOMED CT code (pydicom ``Code``) of a CID 4015 view modifier given by its meaning, in any
    case ("magnification", "Spot Compression", "implant-displaced"); ValueError for another name."""
    code = _CODE_BY_NAME.get(_canonical(name))
    if code is None:
        raise ValueError(f"unknown view modifier {name!r}; CID 4015 has: {', '.join(sorted(_CODE_BY_NAME))}")
    return code


def diagnostic_view_reason(view_modifiers: str | None, magnification: float | None) -> str:
    """Why an image is a diagnostic view, not a screening one; "" for a screening view.

    Args:
        view_modifiers: the image's ``meta["view_modifiers"]`` (names joined by ", ").
        magnification: its ``meta["magnification"]`` (EstimatedRadiographicMagnificationFactor).
    """
    named = [m.strip() for m in (view_modifiers or "").split(",") if m.strip() in DIAGNOSTIC_MODIFIERS]
    reasons = [f"a {m.lower()} view" for m in named]
    if magnification is not None and magnification >= MAGNIFICATION_GEOMETRY:
        reasons.append(f"magnified {magnification:g} x")
    return "; ".join(reasons)
