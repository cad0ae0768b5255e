"""Real files as users have them: compressed TIFF, 16-bit PNG, compressed DICOM transfer syntaxes.

Every file here is made from one uncompressed phantom mammogram with the codec libraries
(tifffile + imagecodecs, Pillow, ITK, imagecodecs' JPEG / JPEG-LS / JPEG 2000 encoders, pydicom's
encapsulation and RLE encoder) and must load IDENTICALLY to the original: the same pixels
(``np.array_equal``), the same spacing and the same acquisition meta.
"""

from __future__ import annotations

from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
import pytest
import tifffile
from pydicom.encaps import encapsulate
from PIL import Image

from monai_bac.data import MammogramReadError, dicom_write, load_mammogram, write_mammogram_dicom
from monai_bac.phantom import make_phantom

# itk's SWIG bindings warn about their own types on import; nothing to do with this code
pytestmark = pytest.mark.filterwarnings("ignore:builtin type [Ss]wig.*has no __module__:DeprecationWarning")

SPACING = (0.5, 0.5)


@pytest.fixture(scope="module", params=["HOLOGIC", "GE"])
def original(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """An uncompressed phantom DICOM (14-bit MONOCHROME2 or 16-bit MONOCHROME1) and its phantom."""
    p = make_phantom(2, spacing_mm=SPACING[0], vendor=request.param)
    m = p.meta
    path = write_mammogram_dicom(
        tmp_path_factory.mktemp(request.param) / "original.dcm", p.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"],
        thickness_mm=m["thickness_mm"], anode=m["anode"], filter=m["filter"], view=m["view"],
        laterality=m["laterality"], manufacturer=m["manufacturer"], photometric=m["photometric"],
        bits_stored=m["bits_stored"], exposure_mas=m["exposure_mas"], compression_force_n=m["compression_force_n"],
    )
    return path, p


# ------------------------------------------------------------------------------------------ TIFF / PNG


@pytest.mark.parametrize("compression, tag", [("lzw", 5), ("adobe_deflate", 8), ("zlib", 8), ("packbits", 32773)])
def test_compressed_tiff(original, tmp_path: Path, compression: str, tag: int) -> None:
    _, p = original
    path = tmp_path / f"m_{compression}.tif"
    tifffile.imwrite(path, p.raw, compression=compression)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].compression == tag and tif.pages[0].bitspersample == 16  # really compressed
    img = load_mammogram(path, spacing_mm=SPACING)
    assert np.array_equal(img[0].numpy(), p.raw.astype(np.float32))
    assert img.meta["spacing_mm"] == SPACING and img.meta["spacing_source"] == "argument"


@pytest.mark.parametrize("writer", ["pillow", "imagecodecs", "itk"])
def test_16_bit_png(original, tmp_path: Path, writer: str) -> None:
    _, p = original
    path = tmp_path / f"m_{writer}.png"
    if writer == "pillow":
        Image.fromarray(p.raw).save(path)
    elif writer == "imagecodecs":
        path.write_bytes(imagecodecs.png_encode(p.raw))
    else:
        itk = pytest.importorskip("itk")
        itk.imwrite(itk.image_from_array(p.raw), str(path))
    with Image.open(path) as png:
        assert png.mode == "I;16"  # 16-bit greyscale in the file
    img = load_mammogram(path, spacing_mm=SPACING)
    assert np.array_equal(img[0].numpy(), p.raw.astype(np.float32))
    assert img.meta["spacing_mm"] == SPACING


# ------------------------------------------------------------------------------------------ compressed DICOM


def _encoders(bits: int) -> dict[str, tuple[str, object]]:
    """Transfer syntax name -> (UID, encoder of a uint16 (H, W) array to one frame's bytes)."""
    return {
        "jpeg2000-lossless": ("1.2.840.10008.1.2.4.90",
                              lambda a: imagecodecs.jpeg2k_encode(a, codecformat="j2k", reversible=True,
                                                                  bitspersample=bits)),
        "jpeg-lossless-sv1": ("1.2.840.10008.1.2.4.70",
                              lambda a: imagecodecs.jpeg8_encode(a, lossless=True, predictor=1, bitspersample=bits)),
        "jpeg-lossless-p14": ("1.2.840.10008.1.2.4.57", lambda a: imagecodecs.ljpeg_encode(a, bitspersample=bits)),
        "jpeg-ls-lossless": ("1.2.840.10008.1.2.4.80", lambda a: imagecodecs.jpegls_encode(a, level=0)),
        "jpeg-ls-near-lossless-0": ("1.2.840.10008.1.2.4.81", lambda a: imagecodecs.jpegls_encode(a, level=0)),
    }


def _compressed_copy(src: Path, dst: Path, uid: str, frame: bytes) -> Path:
    ds = pydicom.dcmread(src)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(uid)
    ds.PixelData = encapsulate([bytes(frame)])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    dicom_write.save_dataset(ds, dst)  # Part-10 writing call for the installed pydicom (2.x or 3.x)
    return dst


def _assert_identical(path: Path, original_path: Path) -> None:
    want, got = load_mammogram(original_path), load_mammogram(path)
    assert np.array_equal(got[0].numpy(), want[0].numpy())
    assert got.dtype == want.dtype and got.shape == want.shape
    differ = {k for k in want.meta if k != "filename_or_obj" and not _same(want.meta[k], got.meta[k])}
    assert not differ, {k: (want.meta[k], got.meta[k]) for k in differ}


def _same(a, b) -> bool:
    if hasattr(a, "shape"):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


@pytest.mark.parametrize("codec", list(_encoders(16)))
def test_compressed_dicom_loads_identically(original, tmp_path: Path, codec: str) -> None:
    path, p = original
    uid, encode = _encoders(p.meta["bits_stored"])[codec]
    frame = encode(p.raw)
    assert len(frame) < p.raw.nbytes * 0.8  # really compressed
    dst = _compressed_copy(path, tmp_path / f"{codec}.dcm", uid, frame)
    assert pydicom.dcmread(dst).file_meta.TransferSyntaxUID == uid
    _assert_identical(dst, path)


def test_rle_dicom_loads_identically(original, tmp_path: Path) -> None:
    path, _ = original
    ds = pydicom.dcmread(path)
    uid = ds.SOPInstanceUID
    ds.compress(pydicom.uid.RLELossless)  # pydicom's own encoder (pydicom 3's also makes a new SOPInstanceUID)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid
    dicom_write.save_dataset(ds, tmp_path / "rle.dcm")
    _assert_identical(tmp_path / "rle.dcm", path)


def test_compressed_dicom_with_wrong_geometry_is_refused(original, tmp_path: Path) -> None:
    """A codestream whose size differs from Rows x Columns is refused, naming the tags."""
    path, p = original
    uid, encode = _encoders(p.meta["bits_stored"])["jpeg2000-lossless"]
    dst = _compressed_copy(path, tmp_path / "cropped.dcm", uid, encode(np.ascontiguousarray(p.raw[:-10])))
    with pytest.raises(MammogramReadError, match=r"cropped\.dcm: decoded PixelData \(7FE0,0010\) has shape"):
        load_mammogram(dst)
