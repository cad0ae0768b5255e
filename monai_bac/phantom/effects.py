"""Which effects of a real raw mammogram the realistic phantom puts in, one switch each.

``make_phantom(..., physics="realistic", effects=...)`` takes an :class:`Effects` (or a name such as
``"scatter"``, ``"spectrum+heel"``, ``"all"``, ``"none"``) so that each effect can be switched on
alone, for an ablation that shows what each one costs a transform:

* ``spectrum``: the polyenergetic tube spectrum (SpekPy, AEC anode/filter) and the detector's
  energy-dependent absorption; off, one energy (the ideal mode's effective energy and attenuation
  tables) and an ideal absorber;
* ``scatter``: scatter behind the anti-scatter grid;
* ``heel``: the heel effect along the chest-wall-to-nipple axis;
* ``vendor``: the vendor's acquisition beyond its encoding (which the ideal mode already has):
  its native pixel pitch (where ``spacing_mm=None``), the skin layer, the detector's dark offset
  and residual flat-field pattern, and in MLO views the paddle rim and the abdominal fold;
* ``merged``: the annotation's merged strokes: look-alikes placed beside and across calcified
  runs (:data:`LOOKALIKES_NEAR_BAC`) and brushed in one stroke with the run
  (:data:`MERGE_RATE`, where the :class:`~monai_bac.phantom.TPAConfig` gives none);
* ``edge``: the breast's edge profile varies round the outline: the periphery (where the
  thickness falls from H0 to 0 at the skin line) is wider towards the nipple and narrower at the
  chest wall and axilla, and its fall-off rounder or flatter
  (:func:`monai_bac.phantom.geometry.edge_variation`); off, one width and a circular fall-off
  all round, as in the ideal mode.

With none of the four physical effects on, the image is formed as in the ideal mode (bit for bit
the ideal image when ``edge`` and ``merged`` are off too: those two change the anatomy and the
annotation, not the image formation).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

__all__ = ["Effects", "EFFECT_NAMES", "LOOKALIKES_NEAR_BAC", "MERGE_RATE"]

#: fraction of micro-calcification clusters / dense strands placed beside or across BAC (``merged`` on)
LOOKALIKES_NEAR_BAC = 0.5
#: fraction of the look-alikes near an annotated run brushed in one stroke with it (``merged`` on)
MERGE_RATE = 0.5


@dataclass(frozen=True)
class Effects:
    """Switches of the realistic phantom; all on by default."""

    spectrum: bool = True
    scatter: bool = True
    heel: bool = True
    vendor: bool = True
    merged: bool = True
    edge: bool = True

    @classmethod
    def only(cls, *names: str) -> "Effects":
        """These effects on, every other one off."""
        unknown = set(names) - set(EFFECT_NAMES)
        if unknown:
            raise ValueError(f"unknown effect(s) {sorted(unknown)}; choose from {', '.join(EFFECT_NAMES)}")
        return cls(**{n: n in names for n in EFFECT_NAMES})

    @classmethod
    def parse(cls, value: "Effects | str | None") -> "Effects":
        """An :class:`Effects` from itself, None (all), ``"all"``, ``"none"`` or names joined by ``+``."""
        if value is None:
            return cls()
        if isinstance(value, Effects):
            return value
        text = str(value).strip().lower()
        if text == "all":
            return cls()
        if text == "none":
            return cls.only()
        return cls.only(*(part.strip() for part in text.split("+") if part.strip()))

    @property
    def physical(self) -> bool:
        """Whether any effect changes the image formation (everything but ``merged`` and ``edge``)."""
        return self.spectrum or self.scatter or self.heel or self.vendor

    @property
    def label(self) -> str:
        """``"all"``, ``"none"`` or the names of the effects on, joined by ``+``."""
        on = [n for n in EFFECT_NAMES if getattr(self, n)]
        return "all" if len(on) == len(EFFECT_NAMES) else "+".join(on) or "none"

    def to_dict(self) -> dict:
        return asdict(self)


EFFECT_NAMES = tuple(f.name for f in fields(Effects))
