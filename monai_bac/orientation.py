"""How a mammogram is stored, from PatientOrientation (0020,0020), and how to turn it to the way the
analysis expects.

The reader keeps the pixels as the file stores them (outputs such as a DICOM SEG must lie on the
stored grid). Vendors usually store a mammogram with the anterior-posterior axis along the rows
(the chest wall at the left or right edge) and the head side at the top: ``A\\FR`` / ``P\\FL``
for an MLO, ``A\\R`` / ``P\\L`` for a CC (the direction of a row, then of a column; PS3.3
C.7.6.1.1.1). BreastRegion looks for the chest wall at a side and the pectoral muscle in the upper
chest-wall corner, and DensityMap fits its fatty reference along the chest-wall-to-nipple axis; an
image the header says is stored otherwise is analysed turned, and its maps turned back.
"""

from __future__ import annotations

__all__ = ["head_up"]


def head_up(patient_orientation: str | None) -> tuple[bool, bool]:
    """``(transpose, reverse_rows)`` that turn an image stored as PatientOrientation (0020,0020) says
    (``meta["patient_orientation"]``, "row direction\\column direction") into the orientation the
    analysis expects: the anterior-posterior axis along the rows (chest wall left or right) and the
    head side at the top (``A\\FR``, ``P\\FL`` for an MLO, ``A\\R`` for a CC, as vendors usually
    store them). A left-right mirror needs nothing (it is what the other breast looks like). Absent or
    unreadable: ``(False, False)``, the image as stored."""
    parts = str(patient_orientation or "").upper().split("\\")
    if len(parts) != 2:
        return False, False
    along_rows, down_columns = parts
    transpose = any(c in down_columns for c in "AP") and not any(c in along_rows for c in "AP")
    if transpose:
        along_rows, down_columns = down_columns, along_rows
    return transpose, "H" in down_columns
