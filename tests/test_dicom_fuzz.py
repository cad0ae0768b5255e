"""A seeded DICOM fuzzer for ``load_mammogram``: every mutant is loaded correctly or refused clearly.

Seeds are small valid phantom mammograms (HOLOGIC-like 14-bit MONOCHROME2 and GE-like 16-bit
MONOCHROME1, 0.5 mm, ~570 x 480 px). Each seed gets the same families of mutations: tag
deletions, VR and value corruptions, geometry / bit depth / rescale / spacing changes,
truncated or extended PixelData, transfer-syntax changes (garbage UIDs, re-encoding), preamble
removal, random byte flips in the header, truncation at random offsets; plus special files (a
FIFO, a folder, an empty file, links to devices). Every mutant says what a correct loader
must do with it:

- ``same``: load, and give exactly the seed's pixels and spacing (the mutation is harmless);
- ``value``: load, and give the pixels/spacing computed here from the mutation (e.g. a slope of 2);
- ``refuse``: raise :class:`MammogramReadError` (loading it is silently wrong);
- ``either``: refusing is fine; loading is fine if the result passes the generic checks.

Generic checks on anything loaded: finite float32 (1, Rows, Columns) with the Rows/Columns the
file declares, those consistent with the PixelData length, not constant, spacing within
:data:`monai_bac.units.MIN_SPACING_MM` .. :data:`~monai_bac.units.MAX_SPACING_MM`.

Outcomes: ``loaded-correct``, ``refused-clearly`` (MammogramReadError naming the file),
``unclear`` (MammogramReadError without the file name, or the loader's catch-all
"unexpected failure"), ``crash`` (any other exception), ``hang`` (over the per-mutant time
limit, enforced with SIGALRM so that a hang fails the test instead of blocking pytest),
``silently-wrong`` (loaded, but a check above fails) and ``wrongly-refused`` (a ``same`` or
``value`` mutant refused). Only the first two are allowed.
"""

from __future__ import annotations

import collections
import io
import os
import re
import signal
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.encaps import encapsulate
from pydicom.tag import Tag

from monai_bac.data import MammogramReadError, dicom_write, load_mammogram, write_mammogram_dicom
from monai_bac.phantom import make_phantom
from monai_bac.units import MAX_SPACING_MM, MIN_SPACING_MM

SEED = 20240611
TIME_LIMIT_S = 5.0
N_FLIPS = 40  # random header byte-flip mutants per seed
N_CUTS = 8  # random truncation mutants per seed
_TAG_NUMBER = re.compile(r"\([0-9A-F]{4},[0-9A-F]{4}\)")


@dataclass
class Seed:
    name: str
    data: bytes  # the Part-10 file
    pixels: np.ndarray  # what load_mammogram must return for it (H, W) float32
    stored: np.ndarray  # the stored values (H, W) uint16
    spacing: tuple[float, float]
    bits_stored: int
    mono1: bool


@dataclass
class Mutant:
    name: str
    seed: Seed
    expect: str  # "same" | "value" | "refuse" | "either"
    data: bytes | None = None  # file content, or None when ``make`` builds the file
    make: Callable[[Path], Path] | None = None  # builds a special file, returns the path to load
    pixels: np.ndarray | None = None  # for "value"
    spacing: tuple[float, float] | None = None  # for "value" (None: the seed's)


# ------------------------------------------------------------------------------------------ seeds


def _seed(tmp: Path, name: str, vendor: str, seed: int) -> Seed:
    p = make_phantom(seed, spacing_mm=0.5, vendor=vendor)
    m = p.meta
    path = write_mammogram_dicom(
        tmp / f"{name}.dcm", p.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"],
        anode=m["anode"], filter=m["filter"], view=m["view"], laterality=m["laterality"],
        manufacturer=m["manufacturer"], photometric=m["photometric"], bits_stored=m["bits_stored"],
    )
    return Seed(name, path.read_bytes(), p.linear.astype(np.float32), p.raw, tuple(m["spacing_mm"]),
                m["bits_stored"], m["photometric"] == "MONOCHROME1")


# ------------------------------------------------------------------------------------------ editing


def _ds(seed: Seed) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(seed.data))


def _dump(ds: pydicom.Dataset, little: bool = True, implicit: bool = False) -> bytes:
    """The data set as a Part-10 file in the given encoding, written as it is (no validation)."""
    out = io.BytesIO()
    dicom_write.save_dataset(ds, out, as_is=True, little_endian=little, implicit_vr=implicit)
    return out.getvalue()


def _raw(ds: pydicom.Dataset, keyword: str, vr: str, value: bytes) -> None:
    """Put ``value`` bytes under ``keyword`` with ``vr`` exactly as given (pydicom writes it unchecked)."""
    tag = Tag(tag_for_keyword(keyword))
    ds._dict[tag] = RawDataElement(tag, vr, len(value), value, 0, False, True)


def _edit(seed: Seed, **changes) -> bytes:
    """The seed with tags set (a bytes value is written raw with the tag's usual VR; None deletes)."""
    ds = _ds(seed)
    for keyword, value in changes.items():
        if value is None:
            if keyword in ds:
                del ds[keyword]
        elif isinstance(value, bytes):
            _raw(ds, keyword, ds[keyword].VR if keyword in ds else pydicom.datadict.dictionary_VR(keyword), value)
        else:
            setattr(ds, keyword, value)
    return _dump(ds)


def _meta(seed: Seed, uid: str) -> bytes:
    """The seed with its TransferSyntaxUID (0002,0010) replaced in the bytes (pydicom refuses to
    write an unknown one); the data set is left as it is, and the group length is kept right."""
    data = seed.data
    start = data.index(b"\x02\x00\x10\x00UI")
    old_len = int.from_bytes(data[start + 6 : start + 8], "little")
    value = uid.encode() + b"\0" * (len(uid) % 2)
    element = data[start : start + 6] + len(value).to_bytes(2, "little") + value
    out = bytearray(data[:start] + element + data[start + 8 + old_len :])
    group = out.index(b"\x02\x00\x00\x00UL") + 8  # (0002,0000) FileMetaInformationGroupLength
    group_length = int.from_bytes(out[group : group + 4], "little") + len(value) - old_len
    out[group : group + 4] = group_length.to_bytes(4, "little")
    return bytes(out)


def _pixel_value_offset(data: bytes) -> int:
    """Byte offset of the PixelData value in an Explicit VR Little Endian file (the last element)."""
    return data.rindex(b"\xe0\x7f\x10\x00OW") + 12


# ------------------------------------------------------------------------------------------ mutants


def _deletions(s: Seed) -> list[Mutant]:
    harmless = ["KVP", "BodyPartThickness", "PatientID", "PatientName", "StudyDate", "Manufacturer",
                "ViewPosition", "ImageLaterality", "PresentationIntentType", "SamplesPerPixel",
                "PixelRepresentation", "RescaleSlope", "RescaleIntercept", "RescaleType", "HighBit",
                "ImagerPixelSpacing", "SOPInstanceUID", "PixelIntensityRelationship", "ImageType"]
    fatal = ["Rows", "Columns", "BitsAllocated", "PixelData", "Modality"]
    out = [Mutant(f"del-{k}", s, "same", _edit(s, **{k: None})) for k in harmless]
    out += [Mutant(f"del-{k}", s, "refuse", _edit(s, **{k: None})) for k in fatal]
    out.append(Mutant("del-both-spacings", s, "refuse", _edit(s, ImagerPixelSpacing=None, PixelSpacing=None)))
    # BitsStored absent -> BitsAllocated (16): HighBit 13 then contradicts it for the 14-bit seed
    out.append(Mutant("del-BitsStored", s, "same" if s.bits_stored == 16 else "refuse", _edit(s, BitsStored=None)))
    out.append(Mutant("del-Photometric", s, "refuse", _edit(s, PhotometricInterpretation=None)))
    return out


def _geometry(s: Seed) -> list[Mutant]:
    h, w = s.stored.shape
    out = []
    for rows, cols in [(0, 0), (0, w), (h, 0), (1, 65535), (65535, 1), (10, 10), (h - 1, w), (h, w + 1),
                       (h * 2, w), (h // 2, w), (h + 1, w - 1), (356, 598), (h, w // 2)]:
        out.append(Mutant(f"geom-{rows}x{cols}", s, "refuse", _edit(s, Rows=rows, Columns=cols)))
    # the same number of bytes in another shape: no file-level check can tell (see the report)
    out.append(Mutant("geom-swapped", s, "either", _edit(s, Rows=w, Columns=h)))
    out.append(Mutant("geom-rows-2-values", s, "refuse", _edit(s, Rows=np.array([h, h], "<u2").tobytes())))
    out.append(Mutant("frames-2", s, "refuse", _edit(s, NumberOfFrames="2")))
    out.append(Mutant("frames-abc", s, "refuse", _edit(s, NumberOfFrames=b"abc ")))
    out.append(Mutant("frames-1", s, "same", _edit(s, NumberOfFrames="1")))
    out.append(Mutant("samples-3", s, "refuse", _edit(s, SamplesPerPixel=3)))
    return out


def _bit_depth(s: Seed) -> list[Mutant]:
    out = [Mutant(f"alloc-{b}", s, "refuse", _edit(s, BitsAllocated=b)) for b in (0, 1, 8, 12, 32, 40)]
    out += [Mutant(f"stored-{b}", s, "refuse", _edit(s, BitsStored=b)) for b in (0, 1, 5, 8, 12, 17, 40)]
    out.append(Mutant("stored-12-in-8", s, "refuse", _edit(s, BitsAllocated=8, BitsStored=12, HighBit=11)))
    out += [Mutant(f"highbit-{b}", s, "refuse", _edit(s, HighBit=b)) for b in (0, 15 if s.bits_stored != 16 else 7)]
    out.append(Mutant("signed", s, "refuse", _edit(s, PixelRepresentation=1)))
    out.append(Mutant("pixrep-2", s, "refuse", _edit(s, PixelRepresentation=2)))
    # a genuine 8-bit file: the stored values really are 8 bits (re-quantised here)
    stored8 = (s.stored >> (s.bits_stored - 8)).astype(np.uint8)
    ds = _ds(s)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelData = 8, 8, 7, stored8.tobytes()
    want = (255.0 - stored8) if s.mono1 else stored8.astype(np.float32)
    out.append(Mutant("real-8-bit", s, "value", _dump(ds), pixels=want.astype(np.float32)))
    # 16 bits declared for data stored in 14 (plausible: values fit, MONOCHROME1 range changes)
    if not s.mono1:
        out.append(Mutant("stored-16-for-14", s, "same", _edit(s, BitsStored=16, HighBit=15)))
    return out


def _rescale(s: Seed) -> list[Mutant]:
    out = [Mutant(f"slope-{v}", s, "refuse", _edit(s, RescaleSlope=v.encode().ljust(2 + len(v) % 2)))
           for v in ("0", "1e39", "-1", "nan", "inf", "abc", "1e-9", "1e9")]
    out.append(Mutant("slope-empty", s, "same", _edit(s, RescaleSlope=b"  ")))  # empty = absent = identity
    out += [Mutant(f"intercept-{v}", s, "refuse", _edit(s, RescaleIntercept=v.encode().ljust(2 + len(v) % 2)))
            for v in ("-1e38", "1e6", "nan", "-inf", "abc")]
    out.append(Mutant("slope-2-values", s, "refuse", _edit(s, RescaleSlope=b"1\\2 ")))
    out.append(Mutant("slope-2", s, "value", _edit(s, RescaleSlope="2"), pixels=s.pixels * np.float32(2)))
    out.append(Mutant("slope-0.5-int-100", s, "value", _edit(s, RescaleSlope="0.5", RescaleIntercept="-100"),
                      pixels=s.pixels * np.float32(0.5) - np.float32(100)))
    return out


def _spacing(s: Seed) -> list[Mutant]:
    out = [Mutant(f"spacing-{v}", s, "refuse", _edit(s, ImagerPixelSpacing=v))
           for v in (b"1e-30\\1e-30 ", b"1e6\\1e6 ", b"0\\0 ", b"-0.1\\-0.1 ", b"abc\\def ", b"0.1 ",
                     b"0.1\\0.1\\0.1 ", b"nan\\nan ", b"0.005\\0.5 ", b"0.5\\8.5 ")]
    out.append(Mutant("spacing-0.1", s, "value", _edit(s, ImagerPixelSpacing=b"0.1\\0.1 "), pixels=s.pixels,
                      spacing=(0.1, 0.1)))
    out.append(Mutant("spacing-only-PixelSpacing", s, "same", _edit(s, ImagerPixelSpacing=None)))
    return out


def _pixel_data(s: Seed) -> list[Mutant]:
    offset = _pixel_value_offset(s.data)
    n = len(s.data) - offset

    def with_pixels(payload: bytes) -> bytes:
        ds = _ds(s)
        ds.PixelData = payload
        return _dump(ds)

    pix = s.data[offset:]
    out = [Mutant(f"pixels-{name}", s, "refuse", with_pixels(payload)) for name, payload in [
        ("empty", b""), ("minus-2", pix[:-2]), ("half", pix[: n // 2]), ("plus-2", pix + b"\0\0"),
        ("plus-1000", pix + bytes(1000)), ("doubled", pix * 2), ("zeros", bytes(n)),
        ("all-ones", b"\xff" * n), ("one-byte", b"\0")]]
    out.append(Mutant("pixels-none", s, "refuse", _edit(s, PixelData=b"")))
    if s.bits_stored < 16:  # random 16-bit noise exceeds BitsStored; for 16-bit data it is "valid"
        noise = np.random.default_rng(SEED).integers(0, 65536, s.stored.size, dtype=np.uint16).tobytes()
        out.append(Mutant("pixels-noise", s, "refuse", with_pixels(noise)))
    # FloatPixelData instead of PixelData
    ds = _ds(s)
    del ds.PixelData
    ds.FloatPixelData = s.stored.astype("<f4").tobytes()
    out.append(Mutant("float-pixel-data", s, "refuse", _dump(ds)))
    return out


def _encodings(s: Seed) -> list[Mutant]:
    out = []
    for uid in ("1.2.3.4", "1.2.840.10008.1.2.4.99999", "abc", "1.2.840.113619.5.2", "1.2.840.10008.5.1.4.1.1.1.2"):
        out.append(Mutant(f"ts-{uid}", s, "refuse", _meta(s, uid)))
    out.append(Mutant("ts-empty", s, "same", _meta(s, "")))  # inferred from the data set's encoding
    out.append(Mutant("ts-says-j2k", s, "refuse", _meta(s, pydicom.uid.JPEG2000Lossless)))
    out.append(Mutant("ts-says-rle", s, "refuse", _meta(s, pydicom.uid.RLELossless)))
    out.append(Mutant("ts-says-implicit", s, "either", _meta(s, pydicom.uid.ImplicitVRLittleEndian)))
    out.append(Mutant("ts-says-big-endian", s, "refuse", _meta(s, pydicom.uid.ExplicitVRBigEndian)))
    # properly re-encoded: identical image
    ds = _ds(s)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    out.append(Mutant("implicit-vr", s, "same", _dump(ds, implicit=True)))
    ds = _ds(s)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    ds.PixelData = s.stored.astype(">u2").tobytes()
    out.append(Mutant("big-endian", s, "same", _dump(ds, little=False)))
    ds = _ds(s)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    out.append(Mutant("deflated", s, "same", _dump(ds)))
    if s.bits_stored < 16:  # big-endian header, pixel bytes left little-endian: values exceed BitsStored
        ds = _ds(s)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
        out.append(Mutant("big-endian-unswapped-pixels", s, "refuse", _dump(ds, little=False)))
    ds = _ds(s)  # encapsulated garbage
    ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEG2000Lossless
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(64)])
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True
    out.append(Mutant("j2k-garbage", s, "refuse", _dump(ds)))
    ds = _ds(s)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.RLELossless
    ds.PixelData = encapsulate([bytes(64)])
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True
    out.append(Mutant("rle-garbage", s, "refuse", _dump(ds)))
    # VR corruptions
    for keyword, expect in (("Rows", "refuse"), ("BitsStored", "refuse"), ("RescaleSlope", "refuse"),
                            ("PatientName", "same"), ("StudyDate", "same"), ("KVP", "value")):
        ds = _ds(s)
        _raw(ds, keyword, "XX", b"\x10\x00")
        m = Mutant(f"vr-XX-{keyword}", s, expect, _dump(ds))
        if expect == "value":
            m.pixels = s.pixels  # KVP dropped with a warning; the image is untouched
        out.append(m)
    ds = _ds(s)
    _raw(ds, "Modality", "CS", b"\xff\xfe")
    out.append(Mutant("modality-bytes", s, "refuse", _dump(ds)))
    out.append(Mutant("modality-CT", s, "refuse", _edit(s, Modality="CT")))
    out.append(Mutant("photometric-RGB", s, "refuse", _edit(s, PhotometricInterpretation="RGB")))
    out.append(Mutant("photometric-PALETTE", s, "refuse", _edit(s, PhotometricInterpretation="PALETTE COLOR")))
    return out


def _bytes(s: Seed, rng: np.random.Generator) -> list[Mutant]:
    d = s.data
    out = [
        Mutant("no-preamble", s, "same", d[128:]),  # 'DICM' + file meta + data set
        Mutant("no-preamble-no-DICM", s, "either", d[132:]),
        Mutant("zeroed-DICM", s, "either", d[:128] + b"\0\0\0\0" + d[132:]),
        Mutant("only-header", s, "refuse", d[: _pixel_value_offset(d) - 12]),
        Mutant("garbage-appended", s, "either", d + rng.bytes(100)),
        Mutant("text-file", s, "refuse", b"not a DICOM file\n" * 100),
        Mutant("random-bytes", s, "refuse", rng.bytes(5000)),
        Mutant("png-named-dcm", s, "refuse", b"\x89PNG\r\n\x1a\n" + rng.bytes(500)),
    ]
    header_end = _pixel_value_offset(d)
    for i in range(N_FLIPS):
        data = bytearray(d)
        for pos in rng.integers(132, header_end, size=int(rng.integers(1, 4))):
            data[pos] ^= int(rng.integers(1, 256))
        out.append(Mutant(f"flip-{i}", s, "either", bytes(data)))
    for i, cut in enumerate(sorted(rng.integers(1, len(d) - 1, size=N_CUTS))):
        out.append(Mutant(f"cut-{i}-at-{cut}", s, "refuse", d[:cut]))
    return out


def _special(s: Seed) -> list[Mutant]:
    def fifo(tmp: Path) -> Path:
        os.mkfifo(tmp / "pipe.dcm")
        return tmp / "pipe.dcm"

    def folder(tmp: Path) -> Path:
        (tmp / "series.dcm").mkdir()
        return tmp / "series.dcm"

    def empty(tmp: Path) -> Path:
        (tmp / "empty.dcm").write_bytes(b"")
        return tmp / "empty.dcm"

    def link_to(target: str) -> Callable[[Path], Path]:
        def make(tmp: Path) -> Path:
            (tmp / "link.dcm").symlink_to(target)
            return tmp / "link.dcm"
        return make

    def link_to_fifo(tmp: Path) -> Path:
        os.mkfifo(tmp / "pipe")
        (tmp / "to_pipe.dcm").symlink_to(tmp / "pipe")
        return tmp / "to_pipe.dcm"

    def no_suffix_fifo(tmp: Path) -> Path:
        os.mkfifo(tmp / "IMG0001")
        return tmp / "IMG0001"

    out = [Mutant(name, s, "refuse", make=make) for name, make in [
        ("fifo", fifo), ("folder", folder), ("empty", empty), ("link-dev-zero", link_to("/dev/zero")),
        ("link-dev-null", link_to("/dev/null")), ("link-fifo", link_to_fifo), ("fifo-no-suffix", no_suffix_fifo)]]
    return out


def _mutants(seeds: list[Seed]) -> list[Mutant]:
    rng = np.random.default_rng(SEED)
    out: list[Mutant] = []
    for s in seeds:
        for family in (_deletions, _geometry, _bit_depth, _rescale, _spacing, _pixel_data, _encodings):
            out += family(s)
        out += _bytes(s, rng)
    return out + _special(seeds[0])


# ------------------------------------------------------------------------------------------ oracle


class _Hang(BaseException):
    """Raised by SIGALRM; a BaseException so that no ``except Exception`` in the loader swallows it."""


def _on_alarm(signum, frame):
    raise _Hang()


def _declared(path: Path) -> tuple[int, int, bool] | None:
    """(Rows, Columns, consistent with the PixelData length) as a plain pydicom parse sees them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = path.read_bytes()
            ds = pydicom.dcmread(io.BytesIO(data[4:] if data[:4] == b"DICM" else data), force=True)
            rows, cols, alloc = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
            syntax = pydicom.uid.UID(ds.file_meta.get("TransferSyntaxUID") or pydicom.uid.ExplicitVRLittleEndian)
            compressed = syntax.is_compressed
            n = len(ds.PixelData)
    except Exception:
        return None
    expected = rows * cols * alloc // 8
    return rows, cols, compressed or n in (expected, expected + expected % 2)


def _check_loaded(img, m: Mutant, path: Path) -> str | None:
    """None when the loaded image is right for the mutant, else why it is silently wrong."""
    a = img[0].numpy()
    if img.dtype != torch.float32:
        return f"dtype {img.dtype}"
    if not np.isfinite(a).all():
        return "non-finite values"
    if a.min() == a.max():
        return "constant image"
    spacing = tuple(img.meta["spacing_mm"])
    if not all(MIN_SPACING_MM <= v <= MAX_SPACING_MM for v in spacing):
        return f"spacing {spacing} out of range"
    declared = _declared(path)
    if declared is None:
        return "loaded a file plain pydicom cannot parse"
    rows, cols, consistent = declared
    if not consistent:
        return f"declared {rows} x {cols} does not match the PixelData length"
    if a.shape != (rows, cols):
        return f"shape {a.shape} but the file declares {rows} x {cols}"
    if m.expect == "refuse":
        return "loaded a file that must be refused"
    if m.expect in ("same", "value"):
        want = m.seed.pixels if m.pixels is None else m.pixels
        if a.shape != want.shape or not np.array_equal(a, want):
            return "pixels differ from the expected ones"
        if spacing != (m.spacing or m.seed.spacing):
            return f"spacing {spacing}, expected {m.spacing or m.seed.spacing}"
    return None


def _run(m: Mutant, path: Path, time_limit_s: float = TIME_LIMIT_S) -> tuple[str, str]:
    """(outcome, detail) for one mutant, with a per-mutant time limit (SIGALRM interrupts a blocked open)."""
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, time_limit_s)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = load_mammogram(path)
    except _Hang:
        return "hang", f"over {time_limit_s} s"
    except MammogramReadError as e:
        text = str(e)
        if str(path) not in text or "unexpected failure" in text:
            return "unclear", text[:300]
        if m.expect in ("same", "value"):
            return "wrongly-refused", text[:300]
        return "refused-clearly", text
    except Exception as e:  # noqa: BLE001 - a bare exception is exactly what the fuzzer looks for
        return "crash", f"{type(e).__name__}: {e}"[:300]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    why = _check_loaded(img, m, path)
    return ("silently-wrong", why) if why else ("loaded-correct", "")


def _fuzz(mutants: list[Mutant], root: Path, time_limit_s: float = TIME_LIMIT_S) -> dict[str, list[str]]:
    """Write each mutant in its own folder, load it, and group ``"seed/name [expect]: detail"`` by outcome."""
    outcomes: dict[str, list[str]] = collections.defaultdict(list)
    for i, m in enumerate(mutants):
        folder = root / f"m{i:03d}"
        folder.mkdir(parents=True)
        if m.make is not None:
            path = m.make(folder)
        else:
            path = folder / f"{m.seed.name}-{m.name}.dcm"
            path.write_bytes(m.data)
        outcome, detail = _run(m, path, time_limit_s)
        outcomes[outcome].append(f"{m.seed.name}/{m.name} [{m.expect}]: {detail}")
    return outcomes


# ------------------------------------------------------------------------------------------ the tests


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[Seed]:
    tmp = tmp_path_factory.mktemp("seeds")
    return [_seed(tmp, "hologic", "HOLOGIC", 0), _seed(tmp, "ge", "GE", 1)]


def test_dicom_fuzz(seeds: list[Seed], tmp_path: Path) -> None:
    for s in seeds:  # the seeds themselves load exactly
        (tmp_path / f"{s.name}.dcm").write_bytes(s.data)
        assert np.array_equal(load_mammogram(tmp_path / f"{s.name}.dcm")[0].numpy(), s.pixels)
    mutants = _mutants(seeds)
    assert len(mutants) >= 200
    outcomes = _fuzz(mutants, tmp_path)
    counts = {k: len(v) for k, v in sorted(outcomes.items())}
    with_tag = sum(bool(_TAG_NUMBER.search(x)) for x in outcomes["refused-clearly"])
    summary = f"{len(mutants)} mutants: {counts}; refusals naming a tag (gggg,eeee): {with_tag}"
    print("\n" + summary)
    bad = {k: v for k, v in outcomes.items() if k not in ("loaded-correct", "refused-clearly")}
    for k, v in bad.items():
        print(k, *v, sep="\n  ")
    assert not bad, summary + "\n" + "\n".join(f"{k}: {x}" for k, v in bad.items() for x in v[:20])
    assert counts.get("loaded-correct", 0) >= 40 and counts.get("refused-clearly", 0) >= 150, summary


def test_fuzzer_catches_a_lax_loader(seeds: list[Seed], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle is not vacuous: a loader without the geometry check, one that drops the intercept,
    one that opens a FIFO and one that fails with a bare exception are all reported."""
    from monai_bac.data import dicom_read, loader

    def unchecked_layout(ds, path, syntax, modality, min_size_px):
        return int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated), int(ds.BitsStored), 0

    monkeypatch.setattr(dicom_read, "_pixel_layout", unchecked_layout)
    monkeypatch.setattr(dicom_read, "_rescale", lambda ds, path, bits: (float(ds.RescaleSlope), 0.0))
    monkeypatch.setattr(loader, "require_regular_file", Path)  # opens anything
    monkeypatch.setattr(dicom_read, "require_regular_file", Path)
    s = seeds[0]
    h, w = s.stored.shape
    mutants = [Mutant("geom-rows-1", s, "refuse", _edit(s, Rows=h - 1)),
               Mutant("geom-half", s, "refuse", _edit(s, Rows=h // 2 + 1)),  # h // 2: pydicom 3 sees 2 frames
               Mutant("slope-0.5-int-100", s, "value", _edit(s, RescaleSlope="0.5", RescaleIntercept="-100"),
                      pixels=s.pixels * np.float32(0.5) - np.float32(100))]
    mutants += [m for m in _special(s) if m.name == "fifo"]
    outcomes = _fuzz(mutants, tmp_path, time_limit_s=0.5)
    assert {k: len(v) for k, v in outcomes.items()} == {"silently-wrong": 3, "hang": 1}, dict(outcomes)
    assert "does not match the PixelData length" in outcomes["silently-wrong"][0]
    assert "pixels differ" in outcomes["silently-wrong"][2]
    monkeypatch.setattr(dicom_read, "_rescale", lambda ds, path, bits: 1 / 0)
    outcomes = _fuzz(mutants[2:3], tmp_path / "crash")
    assert list(outcomes) == ["unclear"] and "unexpected failure" in outcomes["unclear"][0]
