"""Batched torch skeletons and lengths, on the tensor's device (GPU when the tensor is on GPU).

The same measures as :mod:`monai_bac.ops.skeleton` and :mod:`monai_bac.ops.length_dice`:

* :func:`thin_torch`: Guo-Hall thinning, pixel for pixel the skeleton of
  :func:`monai_bac.ops.skeleton.thin_mask` (= ``skimage.morphology.thin``). Each subiteration
  computes every pixel's 8-neighbour code with a fixed 3 x 3 correlation (eight shifted adds of
  the padded batch, bit order of :mod:`monai_bac.ops.skeleton`) and deletes the pixels whose
  code is marked in the subiteration's table, for the whole batch at once.
* :func:`length_density_torch`: each skeleton pixel's share of the geodesic length (mm), a
  per-image 256-entry table lookup (:func:`monai_bac.ops.skeleton.length_lut`).
* :func:`length_dice_terms_torch` / :func:`cldice_terms_torch`: the lengths behind Dice^L
  (Eq. 6) and clDice; the band test is exact (physical distances between skeleton pixel
  centres with ``torch.cdist``), the same rule as the EDT band of the numpy path.

All inputs are (B, H, W) or (B, 1, H, W) masks; spacing is a (B, 2) (row, col) array in mm.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from monai_bac.ops.length_dice import band_radius_mm
from monai_bac.ops.skeleton import NEIGHBOUR_OFFSETS, guo_hall_luts, length_lut
from monai_bac.units import as_spacing

__all__ = [
    "neighbour_codes_torch",
    "thin_torch",
    "length_density_torch",
    "skeleton_length_torch",
    "length_dice_terms_torch",
    "cldice_terms_torch",
]

_CDIST_CHUNK = 1 << 24  # max pairwise distances held at once by the band test


def _as_bhw(mask: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool view of a (B, H, W) or (B, 1, H, W) mask (nonzero = foreground)."""
    if mask.ndim == 4:
        if mask.shape[1] != 1:
            raise ValueError(f"expected a single-channel mask (B, 1, H, W), got {tuple(mask.shape)}.")
        mask = mask[:, 0]
    if mask.ndim != 3:
        raise ValueError(f"expected a (B, H, W) or (B, 1, H, W) mask, got {tuple(mask.shape)}.")
    return mask if mask.dtype == torch.bool else mask != 0


def _spacing_tensor(spacing_mm, batch: int) -> np.ndarray:
    sp = np.asarray(spacing_mm, dtype=np.float64)
    sp = np.array(np.broadcast_to(sp.reshape(-1, 2) if sp.size != 2 else sp.reshape(1, 2), (batch, 2)))
    for row in sp:  # the one spacing check (SpacingError, a ValueError)
        as_spacing(row, "spacing_mm", check_range=False)
    return sp


def neighbour_codes_torch(padded: torch.Tensor) -> torch.Tensor:
    """8-neighbour codes (uint8) of the interior of a padded (B, H + 2, W + 2) 0/1 uint8 batch."""
    h, w = padded.shape[-2] - 2, padded.shape[-1] - 2
    code = torch.zeros(padded.shape[:-2] + (h, w), dtype=torch.uint8, device=padded.device)
    for bit, (dr, dc) in enumerate(NEIGHBOUR_OFFSETS):
        code.add_(padded[..., 1 + dr : 1 + dr + h, 1 + dc : 1 + dc + w], alpha=1 << bit)  # bits never overlap
    return code


def _foreground_box(mask: torch.Tensor) -> tuple[slice, slice] | None:
    """Bounding box (rows, cols) of the foreground over the whole batch, or None when empty."""
    rows = torch.nonzero(mask.any(dim=(0, 2))).flatten()
    if rows.numel() == 0:
        return None
    cols = torch.nonzero(mask.any(dim=(0, 1))).flatten()
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def thin_torch(mask: torch.Tensor) -> torch.Tensor:
    """Guo-Hall thinning of a batch of 2D masks on their device (same skeleton as ``thin_mask``).

    Args:
        mask: (B, H, W) or (B, 1, H, W), bool or numeric (nonzero = foreground).

    Returns:
        bool tensor of the input's shape.
    """
    shape = mask.shape
    m = _as_bhw(mask)
    out = torch.zeros_like(m)
    box = _foreground_box(m)
    if box is None:
        return out.reshape(shape)
    first, second = guo_hall_luts()
    keeps = [torch.as_tensor(~lut, device=m.device).to(torch.uint8) for lut in (first, second)]
    p = F.pad(m[:, box[0], box[1]].to(torch.uint8), (1, 1, 1, 1))
    inner = p[:, 1:-1, 1:-1]
    count = int(inner.sum())
    while True:
        for keep in keeps:
            inner &= torch.take(keep, neighbour_codes_torch(p).long())
        new = int(inner.sum())
        if new == count:
            break
        count = new
    out[:, box[0], box[1]] = inner.bool()
    return out.reshape(shape)


def _length_luts(spacing: np.ndarray, device) -> torch.Tensor:
    return torch.as_tensor(np.stack([length_lut(s) for s in spacing]), dtype=torch.float64, device=device)


def length_density_torch(skel: torch.Tensor, spacing_mm) -> torch.Tensor:
    """Per-pixel share (mm, float64) of the skeleton length, (B, H, W); zero off the skeleton."""
    s = _as_bhw(skel)
    b = s.shape[0]
    luts = _length_luts(_spacing_tensor(spacing_mm, b), s.device)  # (B, 256)
    code = neighbour_codes_torch(F.pad(s.to(torch.uint8), (1, 1, 1, 1))).long().reshape(b, -1)
    dens = torch.gather(luts, 1, code).reshape(s.shape)
    return dens * s


def skeleton_length_torch(skel: torch.Tensor, spacing_mm) -> torch.Tensor:
    """Geodesic length (mm, float64) of each skeleton of the batch, (B,)."""
    return length_density_torch(skel, spacing_mm).sum(dim=(1, 2))


def _points(skel: torch.Tensor, dens: torch.Tensor, spacing: np.ndarray):
    """Physical coordinates (N, 2) in mm and length shares (N,) of one skeleton's pixels."""
    idx = torch.nonzero(skel)
    xy = idx.to(torch.float64) * torch.as_tensor(spacing, dtype=torch.float64, device=skel.device)
    return idx, xy, dens[idx[:, 0], idx[:, 1]]


def _within(xy: torch.Tensor, ref: torch.Tensor, radius: float) -> torch.Tensor:
    """For each point of ``xy`` (N, 2), whether a point of ``ref`` (M, 2) lies within ``radius``."""
    out = torch.zeros(xy.shape[0], dtype=torch.bool, device=xy.device)
    if xy.shape[0] == 0 or ref.shape[0] == 0:
        return out
    step = max(1, _CDIST_CHUNK // ref.shape[0])
    for i in range(0, xy.shape[0], step):
        d = torch.cdist(xy[i : i + step], ref, compute_mode="donot_use_mm_for_euclid_dist")
        out[i : i + step] = (d <= radius).any(dim=1)
    return out


def _skeletons_and_density(pred: torch.Tensor, label: torch.Tensor, spacing: np.ndarray):
    b = pred.shape[0]
    skel = thin_torch(torch.cat([pred, label]))  # one batched thinning for both
    dens = length_density_torch(skel, np.concatenate([spacing, spacing]))
    return skel[:b], skel[b:], dens[:b], dens[b:]


def length_dice_terms_torch(
    pred: torch.Tensor, label: torch.Tensor, spacing_mm, tolerance_mm: float = 2.1
) -> torch.Tensor:
    """Dice^L lengths (mm) of a batch, on the inputs' device.

    Returns:
        (B, 4) float64: ``pred_length, label_length, pred_in_band, label_in_band`` as in
        :class:`monai_bac.ops.length_dice.LengthDiceTerms`.
    """
    pred, label = _as_bhw(pred), _as_bhw(label)
    if pred.shape != label.shape:
        raise ValueError(f"pred and label shapes differ: {tuple(pred.shape)} vs {tuple(label.shape)}.")
    spacing = _spacing_tensor(spacing_mm, pred.shape[0])
    radius = band_radius_mm(tolerance_mm)
    ps, ls, pd, ld = _skeletons_and_density(pred, label, spacing)
    out = torch.zeros((pred.shape[0], 4), dtype=torch.float64, device=pred.device)
    out[:, 0], out[:, 1] = pd.sum(dim=(1, 2)), ld.sum(dim=(1, 2))
    for i in range(pred.shape[0]):
        _, pxy, pw = _points(ps[i], pd[i], spacing[i])
        _, lxy, lw = _points(ls[i], ld[i], spacing[i])
        out[i, 2] = pw[_within(pxy, lxy, radius)].sum()
        out[i, 3] = lw[_within(lxy, pxy, radius)].sum()
    return out


def cldice_terms_torch(pred: torch.Tensor, label: torch.Tensor, spacing_mm) -> torch.Tensor:
    """clDice lengths (mm) of a batch, on the inputs' device.

    Returns:
        (B, 4) float64: ``pred_length, label_length, pred_in_label, label_in_pred`` as in
        :class:`monai_bac.ops.length_dice.CLDiceTerms`.
    """
    pred, label = _as_bhw(pred), _as_bhw(label)
    if pred.shape != label.shape:
        raise ValueError(f"pred and label shapes differ: {tuple(pred.shape)} vs {tuple(label.shape)}.")
    spacing = _spacing_tensor(spacing_mm, pred.shape[0])
    _, _, pd, ld = _skeletons_and_density(pred, label, spacing)
    return torch.stack(
        [pd.sum(dim=(1, 2)), ld.sum(dim=(1, 2)), (pd * label).sum(dim=(1, 2)), (ld * pred).sum(dim=(1, 2))], dim=1
    )
