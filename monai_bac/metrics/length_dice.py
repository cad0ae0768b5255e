"""Length-based Dice (Dice^L, Eq. 6 of Wang et al.) as a MONAI metric.

:func:`compute_length_dice` and :class:`LengthDiceMetric` follow ``monai.metrics.compute_dice``
and ``DiceMetric``: batch-first (B, C, H, W) inputs (numpy, torch or MetaTensor; binary masks or
probabilities cut at ``threshold``), one value per image and channel, ``nan`` for an empty
annotation when ``ignore_empty``, and ``aggregate()`` with MONAI's reductions. Definitions
(the band, the [0, 1] bound, the empty cases) are in :mod:`monai_bac.ops.length_dice`.

The pixel spacing (mm, (row, col)) comes from the ``spacing_mm`` argument, or else from the
``"spacing_mm"`` entry of the inputs' MetaTensor meta (``y_pred`` first, then ``y``), as the
loaders of monai-bac set it. Two backends give the same numbers: ``"numpy"`` (per image, on the
CPU, fast on sparse masks) and ``"torch"`` (batched, on the tensors' device);
``backend="auto"`` takes the torch path for CUDA tensors and the numpy path otherwise.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from monai.data import MetaTensor
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

from monai_bac.ops import length_dice as ld_ops
from monai_bac.ops import skeleton_torch
from monai_bac.units import SPACING_RTOL, affine_spacing, as_spacing, warn_stale_spacing

__all__ = [
    "SPACING_KEY",
    "BACKENDS",
    "resolve_spacing",
    "batched_length_terms",
    "compute_length_dice",
    "LengthDiceMetric",
]

#: MetaTensor meta key holding the (row, col) pixel spacing in mm.
SPACING_KEY = "spacing_mm"
BACKENDS = ("auto", "numpy", "torch")


# ----------------------------------------------------------------------------- spacing
def _spacing_array(spacing, batch_size: int, what: str = "spacing_mm") -> np.ndarray:
    """(B, 2) float64 from a number, a (row, col) pair or a per-image list/array of pairs."""
    if isinstance(spacing, torch.Tensor):
        spacing = spacing.detach().cpu().numpy()
    elif isinstance(spacing, (list, tuple)):
        spacing = [s.detach().cpu().numpy() if isinstance(s, torch.Tensor) else s for s in spacing]
    try:
        sp = np.asarray(spacing, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what} must be (row, col) in mm or one pair per image, got {spacing!r}.") from e
    if sp.ndim == 0 or sp.shape == (1,):
        sp = np.full((batch_size, 2), float(sp.ravel()[0]))
    elif sp.shape == (2,):
        sp = np.tile(sp, (batch_size, 1))
    elif sp.shape == (1, 2):
        sp = np.tile(sp[0], (batch_size, 1))
    if sp.shape != (batch_size, 2):
        raise ValueError(
            f"{what} must be (row, col) in mm or one (row, col) pair per image ({batch_size} images), "
            f"got an array of shape {sp.shape}."
        )
    for row in sp:  # each image's pair through the one spacing check (SpacingError, a ValueError)
        as_spacing(row, what, check_range=False)
    return sp


def _spacing_from_meta(value, batch_size: int) -> np.ndarray:
    """Meta ``spacing_mm`` as (B, 2): a pair, a (B, 2) array, or MONAI's collated form of a pair
    (a list of two tensors of length B, one per axis)."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        parts = [np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64) for v in value]
        if all(p.ndim == 1 for p in parts) and parts[0].shape == parts[1].shape:
            value = np.stack(parts, axis=1)  # collated (row values, col values) -> (B, 2)
        else:
            value = [float(np.ravel(p)[0]) for p in parts]
    return _spacing_array(value, batch_size, what=f"meta[{SPACING_KEY!r}]")


def _affine_spacing(src: MetaTensor, batch_size: int) -> np.ndarray | None:
    """(B, 2) pixel size from the MetaTensor's affine, or one per image of a collated batch
    (:func:`monai_bac.units.affine_spacing`); None where an affine says nothing."""
    a = np.asarray(src.affine.detach().cpu(), dtype=np.float64)
    found = [affine_spacing(m) for m in (a[None] if a.ndim == 2 else a.reshape(-1, *a.shape[-2:]))]
    if not found or any(f is None for f in found):
        return None
    sp = np.asarray(found)
    if sp.shape[0] == 1:
        sp = np.tile(sp, (batch_size, 1))
    return sp if sp.shape == (batch_size, 2) else None


def _metatensor_spacing(src: MetaTensor, batch_size: int) -> np.ndarray | None:
    """Spacing of a MetaTensor: ``meta["spacing_mm"]``, checked against the affine.

    MONAI's spatial transforms (``Resize``, ``Spacing``, ``Zoom``, ...) update the affine but not
    ``meta["spacing_mm"]``; when the two disagree the affine is used, with a warning.
    """
    from_affine = _affine_spacing(src, batch_size)
    if src.meta.get(SPACING_KEY) is None:
        return from_affine
    from_meta = _spacing_from_meta(src.meta[SPACING_KEY], batch_size)
    if from_affine is not None and not np.allclose(from_meta, from_affine, rtol=SPACING_RTOL, atol=0):
        source = src.meta.get("filename_or_obj")
        warn_stale_spacing(str(source) if isinstance(source, str) and source else "the prediction or label",
                           from_meta[0], from_affine[0], "Dice^L", stacklevel=5)
        return from_affine
    return from_meta


def resolve_spacing(spacing_mm, batch_size: int, *sources) -> np.ndarray:
    """The (B, 2) pixel spacing in mm, from the argument or from the sources' MetaTensor meta.

    Args:
        spacing_mm: None, a number, a (row, col) pair, or one pair per image.
        batch_size: number of images B.
        sources: tensors whose ``meta["spacing_mm"]`` is used, in order, when ``spacing_mm`` is
            None (checked against, or else taken from, a non-identity affine).

    Raises:
        ValueError: no spacing given and no source carries ``meta["spacing_mm"]`` (or an affine).
    """
    if spacing_mm is not None:
        return _spacing_array(spacing_mm, batch_size)
    for src in sources:
        if isinstance(src, MetaTensor):
            found = _metatensor_spacing(src, batch_size)
            if found is not None:
                return found
    raise ValueError(
        "length metrics need the pixel spacing in mm: pass spacing_mm=(row_mm, col_mm) (or one pair per image), "
        f"or give MetaTensor inputs whose meta holds {SPACING_KEY!r} (set by monai_bac's loaders)."
    )


# ----------------------------------------------------------------------------- inputs
def _pick_backend(backend: str, *tensors) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend != "auto":
        return backend
    on_gpu = any(isinstance(t, torch.Tensor) and t.device.type != "cpu" for t in tensors)
    return "torch" if on_gpu else "numpy"


def _binarize(x, threshold: float, backend: str):
    """bool masks (plain tensor or ndarray): bool as is, integers ``!= 0``, floats ``>= threshold``."""
    if backend == "torch":
        t = (x.as_tensor() if isinstance(x, MetaTensor) else torch.as_tensor(x)).detach()
        if t.dtype == torch.bool:
            return t
        return t >= threshold if torch.is_floating_point(t) else t != 0
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.dtype == bool:
        return a
    return a >= threshold if a.dtype.kind == "f" else a != 0


def _prepare(y_pred, y, threshold: float, include_background: bool, backend: str):
    """Binary (B, C', H, W) prediction and label, background channel dropped when asked."""
    if y is None:
        raise ValueError("y (the annotation) is required.")
    if tuple(y_pred.shape) != tuple(y.shape):
        raise ValueError(f"y_pred and y must have the same shape, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")
    if len(y_pred.shape) != 4:
        raise ValueError(f"expected batch-first 2D images (B, C, H, W), got shape {tuple(y_pred.shape)}.")
    pred, label = _binarize(y_pred, threshold, backend), _binarize(y, 0.5, backend)
    if not include_background:
        if pred.shape[1] == 1:
            warnings.warn("single channel prediction, `include_background=False` ignored.")
        else:
            pred, label = pred[:, 1:], label[:, 1:]
    return pred, label


def batched_length_terms(
    kind: str, y_pred, y, spacing_mm=None, threshold: float = 0.5, include_background: bool = True,
    tolerance_mm: float = ld_ops.DEFAULT_TOLERANCE_MM, backend: str = "auto",
) -> np.ndarray:
    """Per image and channel lengths (mm) of Dice^L (``kind="length_dice"``) or clDice (``"cldice"``).

    Returns:
        (B, C, 4) float64: the fields of :class:`~monai_bac.ops.length_dice.LengthDiceTerms` or
        :class:`~monai_bac.ops.length_dice.CLDiceTerms`, in their order.
    """
    if kind not in ("length_dice", "cldice"):
        raise ValueError(f"kind must be 'length_dice' or 'cldice', got {kind!r}.")
    backend = _pick_backend(backend, y_pred, y)
    spacing = resolve_spacing(spacing_mm, int(y_pred.shape[0]), y_pred, y)
    pred, label = _prepare(y_pred, y, threshold, include_background, backend)
    b, c = pred.shape[:2]
    if backend == "torch":
        label = label.to(pred.device)
        flat_p, flat_l = pred.reshape(b * c, *pred.shape[2:]), label.reshape(b * c, *label.shape[2:])
        sp = np.repeat(spacing, c, axis=0)
        if kind == "length_dice":
            terms = skeleton_torch.length_dice_terms_torch(flat_p, flat_l, sp, tolerance_mm)
        else:
            terms = skeleton_torch.cldice_terms_torch(flat_p, flat_l, sp)
        return terms.cpu().numpy().reshape(b, c, 4)
    out = np.zeros((b, c, 4))
    for i in range(b):
        for j in range(c):
            if kind == "length_dice":
                out[i, j] = tuple(ld_ops.length_dice_terms(pred[i, j], label[i, j], spacing[i], tolerance_mm))
            else:
                out[i, j] = tuple(ld_ops.cldice_terms(pred[i, j], label[i, j], spacing[i]))
    return out


def _to_output(values: np.ndarray, like) -> torch.Tensor:
    device = like.device if isinstance(like, torch.Tensor) else torch.device("cpu")
    return torch.as_tensor(values, dtype=torch.float32, device=device)


def compute_length_dice(
    y_pred,
    y,
    spacing_mm=None,
    tolerance_mm: float = ld_ops.DEFAULT_TOLERANCE_MM,
    threshold: float = 0.5,
    ignore_empty: bool = True,
    backend: str = "auto",
    include_background: bool = True,
    bounded: bool = True,
) -> torch.Tensor:
    """Dice^L (Eq. 6) of every image and channel of a batch, in [0, 1] (see ``bounded``).

    Args:
        y_pred: (B, C, H, W) prediction, numpy, torch or MetaTensor: a bool or integer mask
            (nonzero is foreground) or float values cut at ``threshold`` (``>= threshold``).
        y: (B, C, H, W) annotation: bool, integer (nonzero) or float (``>= 0.5``) mask.
        spacing_mm: (row, col) spacing in mm, or one pair per image; None reads
            ``meta["spacing_mm"]`` of ``y_pred`` (then ``y``) when they are MetaTensors.
        tolerance_mm: total width (mm) of the band around the annotation skeleton (2.1 mm:
            the typical breast artery, Sec. 3.4).
        threshold: cut-off applied to float predictions.
        ignore_empty: an empty annotation (zero skeleton length) gives ``nan`` when True,
            otherwise 1.0 if the prediction is empty too and 0.0 if not.
        backend: ``"auto"``, ``"numpy"`` or ``"torch"`` (module docstring).
        include_background: False drops channel 0 (for one-hot inputs).
        bounded: True gives ``min(1, Eq. 6)``; False gives Eq. (6) as printed (may exceed 1).

    Returns:
        (B, C) float32 tensor, on ``y_pred``'s device.

    Example::

        dice_l = compute_length_dice(pred_probs, labels, spacing_mm=(0.1, 0.1))
    """
    t = batched_length_terms("length_dice", y_pred, y, spacing_mm, threshold, include_background, tolerance_mm, backend)
    values = ld_ops.length_dice_from_terms(t[..., 2], t[..., 0], t[..., 1], ignore_empty=ignore_empty, bounded=bounded)
    return _to_output(values, y_pred)


class _LengthMetricBase(CumulativeIterationMetric):
    """Shared plumbing of the length metrics: per-image spacing for lists, MONAI aggregation."""

    def __init__(self, spacing_mm, reduction: MetricReduction | str, get_not_nans: bool) -> None:
        super().__init__()
        self.spacing_mm = spacing_mm
        self.reduction = reduction
        self.get_not_nans = get_not_nans

    def _compute_list(self, y_pred, y=None, **kwargs):
        """Lists of channel-first images (decollated batches): resolve each image's spacing, then
        compute the whole list as one batch when the shapes agree (one batched GPU thinning)."""
        if y is None:
            raise ValueError("y (the annotation) is required.")
        n = len(y_pred)
        spacing = kwargs.pop("spacing_mm", None)
        if spacing is None:
            spacing = self.spacing_mm
        if spacing is not None:
            per_image = _spacing_array(spacing, n)
        else:
            per_image = np.concatenate([resolve_spacing(None, 1, p, t) for p, t in zip(y_pred, y)])
        if len({tuple(p.shape) for p in y_pred}) == 1 and len({tuple(t.shape) for t in y}) == 1:
            stack = [
                torch.stack([torch.as_tensor(v.as_tensor() if isinstance(v, MetaTensor) else v).detach() for v in seq])
                for seq in (y_pred, y)
            ]
            return self._compute_tensor(stack[0], stack[1], spacing_mm=per_image, **kwargs)
        return torch.cat(
            [
                self._compute_tensor(p.detach().unsqueeze(0), t.detach().unsqueeze(0), spacing_mm=s, **kwargs)
                for p, t, s in zip(y_pred, y, per_image)
            ]
        )

    def aggregate(self, reduction: MetricReduction | str | None = None):
        """Reduce the buffered (B, C) scores like ``monai.metrics.DiceMetric.aggregate`` (nan ignored).

        Returns:
            the reduced value, or ``(value, not_nans)`` when ``get_not_nans``.
        """
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"the data to aggregate must be PyTorch Tensor, got {type(data)}.")
        f, not_nans = do_metric_reduction(data, reduction or self.reduction)
        return (f, not_nans) if self.get_not_nans else f


class LengthDiceMetric(_LengthMetricBase):
    """Dice^L (Eq. 6 of Wang et al., bounded to [0, 1]) over iterations, like ``DiceMetric``.

    Each call computes one value per image and channel (:func:`compute_length_dice`) and buffers
    it; :meth:`aggregate` reduces the buffer (``"mean"``: average over images, ignoring the
    ``nan`` of empty annotations).

    Args:
        spacing_mm: (row, col) spacing in mm, or one pair per image; None: read
            ``meta["spacing_mm"]`` of the inputs (MetaTensor). A ``spacing_mm=`` keyword given to a
            call overrides it for that call.
        tolerance_mm: band width (mm) around the annotation skeleton, default 2.1.
        threshold: cut-off for float predictions (``>= threshold`` is foreground); labels are
            binary (nonzero, or ``>= 0.5`` for floats).
        include_background: False drops channel 0 (one-hot inputs).
        reduction: MONAI :class:`~monai.utils.MetricReduction` applied by :meth:`aggregate`.
        get_not_nans: :meth:`aggregate` also returns the number of non-nan values.
        ignore_empty: empty annotation -> nan (True) or 1/0 by the prediction (False).
        bounded: ``min(1, Eq. 6)`` (True) or Eq. (6) as printed (False).
        backend: ``"auto"`` (torch on CUDA tensors, numpy otherwise), ``"numpy"`` or ``"torch"``.

    Example::

        metric = LengthDiceMetric(spacing_mm=(0.1, 0.1))
        for batch in loader:
            metric(y_pred=model_probs(batch), y=batch["label"])
        print(metric.aggregate().item())
        metric.reset()
    """

    def __init__(
        self,
        spacing_mm=None,
        tolerance_mm: float = ld_ops.DEFAULT_TOLERANCE_MM,
        threshold: float = 0.5,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
        ignore_empty: bool = True,
        bounded: bool = True,
        backend: str = "auto",
    ) -> None:
        super().__init__(spacing_mm, reduction, get_not_nans)
        ld_ops.band_radius_mm(tolerance_mm)  # validates
        _pick_backend(backend)
        self.tolerance_mm = tolerance_mm
        self.threshold = threshold
        self.include_background = include_background
        self.ignore_empty = ignore_empty
        self.bounded = bounded
        self.backend = backend

    def _compute_tensor(  # type: ignore[override]
        self, y_pred: torch.Tensor, y: torch.Tensor | None = None, spacing_mm=None
    ) -> torch.Tensor:
        return compute_length_dice(
            y_pred,
            y,
            spacing_mm if spacing_mm is not None else self.spacing_mm,
            tolerance_mm=self.tolerance_mm,
            threshold=self.threshold,
            ignore_empty=self.ignore_empty,
            backend=self.backend,
            include_background=self.include_background,
            bounded=self.bounded,
        )

