"""Pictures for people: a display window for raw mammograms and coloured mask overlays (PNG)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from monai_bac.utils import atomic_write_path

__all__ = ["display_window", "overlay", "overlay_picture", "add_legend", "save_png", "BAC_COLOUR", "REMOVED_COLOUR"]

BAC_COLOUR = (255, 40, 40)
REMOVED_COLOUR = (40, 140, 255)


def display_window(raw_hw: np.ndarray, breast: np.ndarray | None = None, percentiles=(0.5, 99.8)) -> np.ndarray:
    """uint8 grey image of a raw (linear) mammogram: -log of the signal, windowed on the breast.

    Dense tissue and calcium show bright, as on a processed mammogram. ``breast`` (bool) sets
    the window; without it, the darkest 60 % of the raw values (tissue, not direct exposure) do.
    The window's percentiles are taken on a regular sample of ~250 000 pixels.
    """
    raw = np.asarray(raw_hw, dtype=np.float32)
    view = -np.log(np.maximum(raw, 0) + 1.0)
    step = max(1, int(np.sqrt(raw.size / 250_000)))
    sample_raw, sample_view = raw[::step, ::step], view[::step, ::step]
    if breast is not None and breast.any():
        sel = np.asarray(breast)[::step, ::step]
    else:
        sel = sample_raw <= np.percentile(sample_raw, 60)
    lo, hi = np.percentile(sample_view[sel], percentiles) if sel.any() else (view.min(), view.max())
    scaled = np.clip((view - lo) / max(hi - lo, 1e-6), 0, 1)
    return (scaled * 255).astype(np.uint8)


def overlay(grey_u8: np.ndarray, masks: Sequence[np.ndarray], colours: Sequence[tuple[int, int, int]] = (BAC_COLOUR,),
            alpha: float = 0.65) -> np.ndarray:
    """RGB uint8 (H, W, 3): ``grey_u8`` with each mask blended in its colour (later masks on top)."""
    rgb = np.repeat(np.asarray(grey_u8, np.uint8)[..., None], 3, axis=2)
    for mask, colour in zip(masks, colours):
        m = np.asarray(mask) > 0
        blend = (1 - alpha) * rgb[m].astype(np.float32) + alpha * np.asarray(colour, np.float32)
        rgb[m] = np.clip(blend, 0, 255).astype(np.uint8)
    return rgb


def save_png(path: str | os.PathLike, image: np.ndarray, overwrite: bool = True, max_side: int | None = None,
             compress_level: int = 1) -> str:
    """Write a grey or RGB uint8 image as PNG, atomically; ``max_side`` shrinks large images.
    (zlib level 1: a third of level 6's time for a few per cent more bytes.)"""
    from PIL import Image

    pil = Image.fromarray(np.asarray(image, np.uint8))
    if max_side and max(pil.size) > max_side:
        scale = max_side / max(pil.size)
        pil = pil.resize((max(1, round(pil.size[0] * scale)), max(1, round(pil.size[1] * scale))), Image.BILINEAR)
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    with atomic_write_path(path, overwrite=overwrite) as tmp:
        pil.save(tmp, format="PNG", compress_level=compress_level)
    return os.fspath(path)


def add_legend(rgb: np.ndarray, entries: Sequence[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    """``rgb`` with a legend in its top-left corner: a colour swatch and a label per entry."""
    from PIL import Image, ImageDraw, ImageFont

    pil = Image.fromarray(np.ascontiguousarray(rgb, np.uint8))
    draw = ImageDraw.Draw(pil)
    size = max(10, min(pil.size) // 40)
    font = ImageFont.load_default(size=size) if hasattr(ImageFont, "load_default") else None
    x, y = size // 2, size // 2
    width = max(draw.textlength(label, font=font) for label, _ in entries) + 2.5 * size
    draw.rectangle([x - 2, y - 2, x + width, y + len(entries) * (size + 4) + 2], fill=(0, 0, 0))
    for label, colour in entries:
        draw.rectangle([x, y, x + size, y + size], fill=tuple(colour))
        draw.text((x + 1.5 * size, y), label, fill=(255, 255, 255), font=font)
        y += size + 4
    return np.asarray(pil)


def overlay_picture(raw_hw: np.ndarray, mask: np.ndarray, breast: np.ndarray | None = None,
                    max_side: int | None = 1600, legend: str | None = "BAC (monai-bac)") -> np.ndarray:
    """RGB uint8 picture of a BAC mask on its raw mammogram, in the display rendition of
    :func:`display_window` (-log of the signal windowed on the breast: tissue and calcium bright).

    Shrunk by a whole factor so that its longer side is at most ``max_side`` (None or 0: full
    size): the raw image by block means before the logarithm, the mask by block maxima, so a
    thin BAC stays visible and a full-size image costs little. ``legend`` labels the colour
    (None: no legend).
    """
    from monai_bac.ops.resample import block_mean

    def block_any(a: np.ndarray) -> np.ndarray:
        return a.reshape(a.shape[0] // f, f, a.shape[1] // f, f).any(axis=(1, 3))

    raw = np.asarray(raw_hw, np.float32)
    m = np.asarray(mask) > 0
    b = None if breast is None else np.asarray(breast) > 0
    f = 1 if not max_side else max(1, -(-max(raw.shape) // int(max_side)))
    if f > 1:
        h, w = (raw.shape[0] // f) * f, (raw.shape[1] // f) * f
        raw, m = block_mean(raw[:h, :w], f, f), block_any(m[:h, :w])
        b = None if b is None else block_any(b[:h, :w])
    pic = overlay(display_window(raw, b), [m], [BAC_COLOUR])
    return add_legend(pic, [(legend, BAC_COLOUR)]) if legend else pic
