"""The studies folder: MONAI Label's local datastore, made safe for annotators' work.

Layout (MONAI Label's, unchanged)::

    studies/
      <id>.dcm | <id>.nii.gz       raw DICOM MG mammograms, or NIfTI made from them
      labels/final/<id>.nii.gz      annotators' corrected labels (what training uses)
      labels/original/<id>.nii.gz   predictions saved with ?save_label=true
      labels/tpa/<id>.nii.gz        third-party labels (optional; scored by 'label_correction')
      datastore_v2.json             MONAI Label's index (written by the server)

What :class:`BACDatastore` adds to :class:`~monailabel.datastore.local.LocalDatastore`:

* it lists DICOM files (``*.dcm``) besides NIfTI (MONAI Label's default list has no DICOM), the
  raw screening mammograms only: a processed rendition (FOR PRESENTATION), a magnification or
  spot compression view, a report or a tomosynthesis object copied in with a study is not listed
  (logged once), since the app cannot segment it and active learning would hand it out (a file
  indexed before it was left out stays in MONAI Label's index);
* image ids and label tags are checked (no path separators, no ``..``): a request can never
  read or write outside the studies folder;
* a label is checked before anything is written: it must be a readable binary NIfTI mask on
  the image's pixel grid (same H x W), else HTTP 422 with the reason, and nothing is stored;
* labels are written atomically (temporary file + rename), and a label that is replaced keeps
  its previous version in ``studies/.monai_bac/label_history/<tag>/<id>.<time>.nii.gz``:
  no annotator's work is ever lost;
* an uploaded image must be a readable mammogram and may not replace an existing id (HTTP 409);
* every path is resolved (``os.path.realpath``) and must stay inside the studies folder: a symlink
  pointing out of it is neither listed nor served nor deleted (HTTP 403), and no response
  carries an absolute path (image info has no ``path``);
* an uploaded label or image is checked by its header before anything is decompressed: more
  pixels than the image (labels) or than ``max_pixels`` (100 Mpx), or an odd data type, is
  refused with HTTP 422 (a 200 kB gzip NIfTI can declare gigabytes);
* deleting is off unless the server allows it (``allow_delete``; HTTP 403 saying how); when on,
  a deleted image or label is moved to ``studies/.monai_bac/trash/<time>_<id>/`` (with a
  ``manifest.json`` saying where each file came from), never erased, and the label history stays;
* the index is shared with the scoring and training tasks MONAI Label runs in other processes: it
  is read again when it changed before any answer, and changed under the lock
  (:mod:`lib.shared_index`), so a score or a "served" mark is neither stale nor lost.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import logging
import os
import re
import secrets
import shutil
import time
from typing import Any, Callable

import numpy as np
from monailabel.datastore.local import DataModel
from monailabel.interfaces.datastore import DefaultLabelTag

from lib.annotator import requester, verified_annotator
from lib.errors import bad_request, conflict, forbidden, not_found, scrub, unprocessable, unsupported
from lib.geometry import dicom_affine, read_label_like, write_label_like
from lib.shared_index import SharedIndexDatastore

logger = logging.getLogger(__name__)

#: image ids: file names without extension (DICOM UIDs, phantom names, ...)
SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")
#: label tags: folder names under labels/
SAFE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
DEFAULT_EXTENSIONS = ("*.dcm", "*.nii.gz", "*.nii")
NIFTI_EXTS = (".nii.gz", ".nii")
#: 3D Slicer's segmentation files, which its MONAI Label module uploads when set to ".seg.nrrd"
#: (needed there for overlapping segments)
SLICER_EXTS = (".seg.nrrd", ".nrrd")
HISTORY_DIR = os.path.join(".monai_bac", "label_history")
TRASH_DIR = os.path.join(".monai_bac", "trash")
#: largest image or label (pixels x frames) the server decompresses
MAX_PIXELS = 100_000_000
#: largest NIfTI header + extensions accepted before the voxel data (bytes)
MAX_NIFTI_HEADER = 1 << 20
DELETE_HOWTO = ("deleting is disabled on this server, nothing was removed. An admin can allow it by starting the "
                "server with `--conf allow_delete true` (or MONAI_BAC_ALLOW_DELETE=true); deleted files are then "
                "moved to <studies>/.monai_bac/trash/, not erased")


def check_image_id(image_id: Any) -> str:
    """``image_id`` if it is a plain datastore id, else HTTP 400 saying why."""
    if not isinstance(image_id, str) or not image_id:
        raise bad_request("no image id given; image ids are the studies folder's file names without extension "
                          "(GET /datastore/?output=all lists them)")
    if not SAFE_ID.match(image_id) or ".." in image_id:
        raise bad_request(f"invalid image id {image_id!r}: an id is a file name in the studies folder without its "
                          "extension (letters, digits, '.', '_', '-'; no path separators or '..')")
    return image_id


def check_tag(tag: Any) -> str:
    tag = tag or DefaultLabelTag.FINAL.value
    if not isinstance(tag, str) or not SAFE_TAG.match(tag):
        raise bad_request(f"invalid label tag {tag!r}: a tag is a folder name under labels/ (letters, digits, "
                          "'_', '-'), e.g. 'final'")
    return tag


def image_shape_spacing(path: str) -> tuple[tuple[int, int], tuple[float, float] | None]:
    """(H, W) and (row, col) spacing of a mammogram file, from its header where possible."""
    from monai_bac.data import load_mammogram, load_nifti_2d

    name = path.lower()
    if name.endswith(NIFTI_EXTS):
        array, spacing = load_nifti_2d(path)
        return tuple(int(s) for s in array.shape), spacing
    try:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if "Rows" in ds and "Columns" in ds:
            spacing = None
            for key in ("ImagerPixelSpacing", "PixelSpacing"):
                if ds.get(key):
                    spacing = tuple(float(s) for s in ds.get(key))
                    break
            return (int(ds.Rows), int(ds.Columns)), spacing
    except Exception:  # not readable as DICOM header: let the full loader say why
        pass
    image = load_mammogram(path)
    return tuple(int(s) for s in image.shape[-2:]), image.meta.get("spacing_mm")


def _nifti_header(path: str):
    """The NIfTI-1/2 header of ``path`` read from its first bytes only (a gzip stream is not inflated further)."""
    import nibabel as nib

    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(544)
    if len(head) < 348:
        raise ValueError("too short for a NIfTI header")
    for order in ("<", ">"):
        size = int(np.frombuffer(head[:4], dtype=f"{order}i4")[0])
        if size in (348, 540) and len(head) >= size:
            cls = nib.Nifti1Header if size == 348 else nib.Nifti2Header
            return cls(head[:size], endianness=order, check=False)
    raise ValueError("no NIfTI header (sizeof_hdr is neither 348 nor 540)")


def check_upload(path: str, what: str, max_pixels: int = MAX_PIXELS, image_hw: tuple[int, int] | None = None,
                 expected: str = "a NIfTI image") -> tuple[int, ...] | None:
    """Refuse (HTTP 422) an uploaded NIfTI or DICOM whose HEADER declares too much data, before decoding it.

    ``image_hw``: for a label, the image's (rows, columns); the label may not hold more pixels.
    ``expected``: what a NIfTI upload should be, for the message when it has no NIfTI header.
    Returns the declared shape, or None for a file that is neither NIfTI nor DICOM (its loader decides).
    """
    limit = min(max_pixels, image_hw[0] * image_hw[1]) if image_hw else max_pixels
    against = f"the image's {image_hw[0]} x {image_hw[1]}" if image_hw else f"the server's limit of {max_pixels:,}"
    lower = str(path).lower()
    if lower.endswith(NIFTI_EXTS):
        try:
            header = _nifti_header(path)
            shape = tuple(int(d) for d in header.get_data_shape())
            dtype = header.get_data_dtype()
            offset = int(header.get("vox_offset", 0))
        except Exception as e:
            raise unprocessable(f"{what} is not {expected}: no readable NIfTI header ({type(e).__name__}: "
                                f"{e}); nothing was read further") from None
        if dtype.kind not in "biuf" or dtype.itemsize > 8:
            raise unprocessable(f"{what}: NIfTI data type {dtype} is not a mask / grey-level type")
        if offset > MAX_NIFTI_HEADER:
            raise unprocessable(f"{what}: NIfTI header declares {offset:,} bytes before the data (extensions); "
                                f"at most {MAX_NIFTI_HEADER:,} are accepted")
    elif lower.endswith(SLICER_EXTS):
        import nrrd

        try:
            shape = tuple(int(d) for d in nrrd.read_header(str(path))["sizes"])
        except Exception as e:
            raise unprocessable(f"{what} is not a 3D Slicer segmentation: no readable NRRD header "
                                f"({type(e).__name__}: {e}); nothing was read further") from None
    elif lower.endswith((".dcm", ".dicom")):
        import pydicom

        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            return None  # not DICOM after all: the loader says why
        if "Rows" not in ds or "Columns" not in ds:
            return None
        shape = (int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames", 1) or 1),
                 int(ds.get("SamplesPerPixel", 1) or 1))
    else:
        return None
    if any(d < 0 for d in shape):
        raise unprocessable(f"{what}: its header declares negative dimensions {shape}")
    n = int(np.prod(shape, dtype=np.float64)) if shape else 0
    if n > limit:
        dims = " x ".join(str(d) for d in shape)
        raise unprocessable(f"{what} declares {dims} = {n:,} pixels in its header, more than {against}; refused "
                            "before decompression, nothing was saved")
    return shape


def read_uploaded_label(image_id: str, image_path: str, label_filename: str, max_pixels: int = MAX_PIXELS,
                        clean: Callable[[str], str] = str) -> tuple[np.ndarray, dict[str, Any]]:
    """An uploaded label checked against its image: the (H, W) uint8 mask in the image's pixel order and
    what the label info records (``shape``, ``bac_pixels``, ``spacing_mismatch_mm`` when the spacings differ).

    HTTP 415 for a file that is not NIfTI, 422 for one that is not a binary 2D mask on the image's pixel
    grid or declares too many pixels (checked from its header before it is decompressed). ``clean``
    removes server folders from messages.
    """
    lower = str(label_filename).lower()
    slicer = lower.endswith(SLICER_EXTS)
    if not (lower.endswith(NIFTI_EXTS) or slicer):
        suffix = "".join(os.path.basename(str(label_filename)).split(".", 1)[1:2])
        raise unsupported(f"label for {image_id!r}: only NIfTI labels (.nii.gz, .nii) and 3D Slicer segmentations "
                          f"(.seg.nrrd) are accepted, got {'a .' + suffix if suffix else 'an extension-less'} file")
    try:
        (h, w), spacing = image_shape_spacing(image_path)
    except Exception as e:
        raise unprocessable(f"image {image_id!r} cannot be read, so no label can be checked against it: "
                            f"{clean(str(e))}") from None
    check_upload(label_filename, f"label for {image_id!r}", max_pixels, image_hw=(h, w),
                 expected="a binary 2D NIfTI mask (0 = background, 1 = bac)")
    expected = "a binary 2D NIfTI mask (0 = background, 1 = bac)"
    if slicer:  # placed by its origin, for a mammogram 3D Slicer puts at the origin (monai_bac.data.slicer_labels)
        if str(image_path).lower().endswith(NIFTI_EXTS) or dicom_affine(image_path) is not None:
            raise unsupported(f"label for {image_id!r}: its image is a NIfTI file or a DICOM with ImagePositionPatient "
                              "/ ImageOrientationPatient, which 3D Slicer places by its own geometry; upload the "
                              "label as NIfTI (.nii.gz)")
        expected = "a 3D Slicer segmentation with a BAC segment, placeable on its image"
    try:
        label, label_spacing = read_label_like(label_filename, image_path, image_hw=(h, w))
    except Exception as e:  # unreadable file, not binary, 3D, ...
        reason = clean(str(e).replace(str(label_filename), "the uploaded label"))
        raise unprocessable(f"label for {image_id!r} is not {expected}: {reason}") from None
    lh, lw = (int(s) for s in label.shape)
    if (lh, lw) != (h, w):
        raise unprocessable(f"label for {image_id!r} is {lh} x {lw} pixels (rows x columns) but the image is "
                            f"{h} x {w}; a label must cover the image's own pixel grid. Nothing was saved.")
    info: dict[str, Any] = {}
    if spacing and label_spacing and any(abs(a - b) > 1e-3 * max(a, b) for a, b in zip(spacing, label_spacing)):
        logger.warning("label for %s has spacing %s mm, the image %s mm; saved (the pixel grid matches)",
                       image_id, label_spacing, spacing)
        info["spacing_mismatch_mm"] = [list(label_spacing), list(spacing)]
    if slicer:
        info["source_format"] = "3D Slicer segmentation (.seg.nrrd)"
    info.update(shape=[h, w], bac_pixels=int((label > 0).sum()))
    return label, info


#: image info: the model's predictions of this image that the app served (``/infer``), by the client that
#: asked (MONAI Label's clients send a ``client_id``: 3D Slicer's module its "Client/User-ID" setting)
PREDICTION_SERVED_KEY = "bac_prediction_served"
#: image-info maps written entry by entry (per strategy, per client), merged on update
#: (:attr:`lib.shared_index.SharedIndexDatastore.merged_info_keys`)
MERGED_INFO_KEYS = (*SharedIndexDatastore.merged_info_keys, PREDICTION_SERVED_KEY)


def annotation_making(image_info: dict[str, Any], client_id: str | None = None) -> dict[str, Any]:
    """How an annotator's label of an image was made, as a DICOM SEG says it (SegmentAlgorithmType
    (0062,0008); the keyword arguments of :func:`monai_bac.dicom_seg.write_dicom_seg`): SEMIAUTOMATIC,
    with the model identified, when the app served this image's prediction to the same client before
    the label came (the annotator corrected it; a label without a client id counts any client's);
    else MANUAL (drawn without the model, or with another server's). ``client_id``: the key of
    :func:`lib.annotator.requester` (the verified user with authentication on)."""
    served = image_info.get(PREDICTION_SERVED_KEY) or {}
    if client_id:
        entry = served.get(str(client_id))
    else:
        entry = max(served.values(), key=lambda e: e.get("ts", 0), default=None)
    if not entry or not entry.get("model"):
        return {"algorithm_type": "MANUAL"}
    return {"algorithm_type": "SEMIAUTOMATIC", "algorithm_version": entry.get("version") or None,
            "algorithm_parameters": {"model": str(entry["model"])}}


def with_provenance(info: dict[str, Any], tag: str, image_info: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A label's info as it is saved: who saved it (``annotator``: the user the server verified, with
    authentication on; :mod:`lib.annotator`) and, for an annotator's ``final`` label, how it was made
    (``segment_algorithm``: :func:`annotation_making` on ``image_info()``, the image's info)."""
    annotator = verified_annotator()
    if annotator:
        info["annotator"] = annotator
    if tag == DefaultLabelTag.FINAL.value:
        info["segment_algorithm"] = annotation_making(image_info(), requester(info.get("client_id")))
    return info

class BACDatastore(SharedIndexDatastore):
    """MONAI Label's ``LocalDatastore`` for raw mammograms with validated, atomic, versioned label saves, and an
    index the server and its background tasks share (:class:`lib.shared_index.SharedIndexDatastore`)."""

    merged_info_keys = MERGED_INFO_KEYS

    def __init__(self, datastore_path: str, images_dir: str = ".", extensions=DEFAULT_EXTENSIONS,
                 auto_reload: bool = False, read_only: bool = False, allow_delete: bool = False,
                 max_pixels: int = MAX_PIXELS):
        self._root = os.path.realpath(datastore_path)
        self.allow_delete = bool(allow_delete)
        self.max_pixels = int(max_pixels)
        self._refused: set[str] = set()
        #: a DICOM file's screening verdict by path, with the (mtime, size) it was read at: every refresh
        #: lists the whole folder, and a header need be read again only when its file changed
        self._screened: dict[str, tuple[tuple[int, int], str]] = {}
        if not self._is_inside(os.path.join(self._root, images_dir), allow_root=True):
            raise ValueError(f"images_dir {images_dir!r} is outside the studies folder; it must be a sub-folder")
        super().__init__(datastore_path, images_dir=images_dir, extensions=list(extensions),
                         auto_reload=auto_reload, read_only=read_only)

    # --- helpers ---------------------------------------------------------------------------
    def _scrub(self, message: str) -> str:
        return scrub(message, self._datastore_path)

    def _is_inside(self, path: str, allow_root: bool = False) -> bool:
        """True when ``path``, symlinks resolved, lies inside the studies folder."""
        real = os.path.realpath(path)
        return (real == self._root and allow_root) or real.startswith(self._root.rstrip(os.sep) + os.sep)

    def _contained(self, path: str, what: str) -> str:
        """``path`` (already resolved) if inside the studies folder, else HTTP 403 (without the target)."""
        if not self._is_inside(path):
            raise forbidden(f"{what} resolves to a file outside the studies folder (a symbolic link pointing "
                            "out); it is not served, changed or deleted. Copy the file into the studies folder")
        return path

    def _list_files(self, path, patterns):
        """MONAI Label's file listing without entries that resolve outside the studies folder, are not files, or
        whose name is not a valid id (letters, digits, '.', '_', '-'), and, among the images, without the
        DICOM files that are not raw screening mammograms (:func:`monai_bac.data.study_files.not_a_raw_screening_view`:
        a processed rendition, a diagnostic view, a report, a tomosynthesis object), as the PACS datastore."""
        listed = super()._list_files(path, patterns)
        images = os.path.realpath(path) == os.path.realpath(self._datastore.image_path())
        kept = {}
        for name, file in listed.items():
            full = os.path.join(path, file)
            ident = self._to_id(os.path.basename(file))[0]
            if not (self._is_inside(full) and os.path.isfile(full) and SAFE_ID.match(ident) and ".." not in ident):
                why = ("it resolves outside the studies folder, is not a file, or its name is not a valid image "
                       "id")
            else:
                why = self._screening_verdict(full) if images and full.lower().endswith(".dcm") else ""
            if not why:
                kept[name] = file
            elif full not in self._refused:
                self._refused.add(full)
                logger.warning("not listed: %s (%s)", self._scrub(full), why)
        return kept

    def _remove_non_existing(self) -> int:
        """MONAI Label's (ids whose file is gone), and also the ids its index (datastore_v2.json) kept from
        before their DICOM file was refused as no raw screening view: MONAI Label's own datastore, or this
        app before a rule, indexed every ``*.dcm``, and an indexed id stays until its file goes. The files
        stay on disk, unlisted. (An indexed file swapped for a link out of the folder stays indexed, and is
        refused with 403 by name when asked for.)"""
        invalidate = super()._remove_non_existing()
        stale = []
        for image_id, obj in self._datastore.objects.items():
            full = os.path.join(self._datastore.image_path(), self._filename(image_id, obj.image.ext))
            if (full.lower().endswith(".dcm") and self._is_inside(full) and os.path.isfile(full)
                    and self._screening_verdict(full)):
                stale.append(image_id)
        for image_id in stale:
            del self._datastore.objects[image_id]
            logger.warning("no longer listed: image %r, which an earlier index held (its file and labels stay)",
                           image_id)
        return invalidate + len(stale)

    def _screening_verdict(self, path: str) -> str:
        """:func:`monai_bac.data.study_files.not_a_raw_screening_view` of ``path``, read once per version."""
        from monai_bac.data.study_files import not_a_raw_screening_view

        try:
            info = os.stat(path)
        except OSError as e:  # removed or replaced since it was listed
            return f"unreadable: {e.strerror}"
        version = (info.st_mtime_ns, info.st_size)
        known = self._screened.get(path)
        if known is None or known[0] != version:
            known = self._screened[path] = (version, not_a_raw_screening_view(path))
        return known[1]

    def get_image_uri(self, image_id: str) -> str:
        uri = super().get_image_uri(check_image_id(image_id))
        return self._contained(uri, f"image {image_id!r}") if uri else uri

    def get_label_uri(self, label_id: str, label_tag: str) -> str:
        uri = super().get_label_uri(check_image_id(label_id), check_tag(label_tag))
        return self._contained(uri, f"label {label_id!r} (tag {label_tag!r})") if uri else uri

    def get_image_info(self, image_id: str) -> dict[str, Any]:
        info = super().get_image_info(check_image_id(image_id))
        info.pop("path", None)  # the server's absolute path; "name" is the file name in the studies folder
        return info

    def datalist(self, full_path=True) -> list[dict[str, Any]]:
        return [d for d in super().datalist(full_path) if all(self._is_inside(p) for p in d.values())]

    def get_dataset_archive(self, limit_cases: int | None) -> str:
        if not self.datalist():  # MONAI Label asserts (HTTP 500) instead
            raise not_found("no image has a label in labels/final yet: there is no dataset to archive")
        return super().get_dataset_archive(limit_cases)

    def require_image(self, image_id: Any) -> str:
        """The path of a known image id; HTTP 400 for a malformed id, 404 for an unknown one."""
        image_id = check_image_id(image_id)
        if image_id not in self._datastore.objects:
            # the index may lag behind files copied in a moment ago
            self.refresh()
        if image_id not in self._datastore.objects:
            raise not_found(f"image {image_id!r} is not in the studies folder; GET /datastore/?output=all lists "
                            "the image ids")
        path = self.get_image_uri(image_id)
        if not path or not os.path.isfile(path):
            raise not_found(f"image {image_id!r} is listed but its file is gone from the studies folder")
        return path

    def label_history_path(self, tag: str) -> str:
        return os.path.join(self._datastore_path, HISTORY_DIR, tag)

    # --- labels ----------------------------------------------------------------------------
    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        tag = check_tag(label_tag)
        image_path = self.require_image(image_id)
        label, info = read_uploaded_label(image_id, image_path, label_filename, self.max_pixels, self._scrub)
        info = with_provenance({**(label_info or {}), **info}, tag, lambda: self.get_image_info(image_id))
        if str(label_filename).lower().endswith(SLICER_EXTS):  # stored as every label is: NIfTI on the image
            import tempfile

            _, spacing = image_shape_spacing(image_path)
            with tempfile.TemporaryDirectory() as tmp:
                nifti = write_label_like(label, image_path, spacing, os.path.join(tmp, "label.nii.gz"))
                return self._store_label(image_id, tag, nifti, False, info)
        return self._store_label(image_id, tag, label_filename, str(label_filename).lower().endswith(".nii"), info)

    def _store_label(self, image_id: str, tag: str, source: str, gzip_it: bool, info: dict[str, Any]) -> str:
        label_dir = self._datastore.label_path(tag)
        dest = os.path.join(label_dir, image_id + ".nii.gz")
        with self._index_lock:
            self._init_from_datastore_file()  # what a background task wrote meanwhile stays
            os.makedirs(label_dir, exist_ok=True)
            self._contained(os.path.realpath(label_dir), f"label folder labels/{tag}")
            self._keep_previous(image_id, tag)
            tmp = os.path.join(label_dir, f".{image_id}.{secrets.token_hex(4)}.partial")
            try:
                if gzip_it:
                    with open(source, "rb") as fin, gzip.open(tmp, "wb") as fout:
                        shutil.copyfileobj(fin, fout)
                else:
                    shutil.copyfile(source, tmp)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, dest)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
            for ext in NIFTI_EXTS:  # a label stored under the other NIfTI name is superseded (kept in history)
                other = os.path.join(label_dir, image_id + ext)
                if other != dest and os.path.exists(other):
                    os.remove(other)
            info["ts"] = int(time.time())
            info["name"] = os.path.basename(dest)
            obj = self._datastore.objects[image_id]
            obj.labels[tag] = DataModel(info=info, ext=".nii.gz")
            self._update_datastore_file(lock=False)
        logger.info("saved label %s for %s (tag %s)", dest, image_id, tag)
        return image_id

    def _keep_previous(self, image_id: str, tag: str) -> None:
        """Copy the label being replaced into the history folder (called under the lock)."""
        label_dir = self._datastore.label_path(tag)
        stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S_%f")
        for ext in NIFTI_EXTS:
            old = os.path.join(label_dir, image_id + ext)
            if os.path.isfile(old) and self._is_inside(old):  # a link pointing out is replaced, not copied
                history = self.label_history_path(tag)
                os.makedirs(history, exist_ok=True)
                shutil.copy2(old, os.path.join(history, f"{image_id}.{stamp}{ext}"))

    # --- images ----------------------------------------------------------------------------
    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        from monai_bac.data import load_mammogram

        name = os.path.basename(str(image_filename))
        ext = next((e.lstrip("*") for e in self._extensions if name.lower().endswith(e.lstrip("*"))), None)
        if ext is None:
            raise unsupported(f"image {name!r}: the studies folder takes {', '.join(self._extensions)} files")
        if not image_id:
            image_id = name[: -len(ext)]
        image_id = check_image_id(image_id)
        dest = os.path.join(self._datastore.image_path(), image_id + ext)
        if image_id in self._datastore.objects or os.path.lexists(dest):
            raise conflict(f"image {image_id!r} already exists in the studies folder; choose another id "
                           "(an existing image is never replaced)")
        check_upload(image_filename, f"image {image_id!r}", self.max_pixels)
        try:
            image = load_mammogram(image_filename)
        except Exception as e:
            raise unprocessable(f"image {image_id!r} is not a readable mammogram: "
                                f"{self._scrub(str(e).replace(str(image_filename), name))}") from None
        from monai_bac.data.study_files import not_a_raw_screening_view

        why = not_a_raw_screening_view(image_filename)
        if why:  # it would be stored but never listed
            raise unprocessable(f"image {image_id!r} is {why}: the studies folder serves raw screening mammograms "
                                "only; nothing was saved")
        info = dict(image_info or {})
        info["shape"] = [int(s) for s in image.shape[-2:]]
        return super().add_image(image_id, image_filename, info)

    # --- deleting: off by default, else to the trash ------------------------------------------
    def _trash(self, image_id: str, moves: list[tuple[str, str]], what: str) -> str:
        """Move each (source, path relative to the studies folder) into a new trash entry; returns its name."""
        stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S_%f")
        entry = f"{stamp}_{image_id}"
        folder = os.path.join(self._datastore_path, TRASH_DIR, entry)
        manifest = {"deleted": what, "image": image_id, "time": stamp, "files": {},
                    "restore": "move each file back to its place in the studies folder (the key of 'files')"}
        os.makedirs(folder)
        for source, relative in moves:
            target = os.path.join(folder, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(source, target)  # the entry itself (a link stays a link): its data is never erased
            manifest["files"][relative] = os.path.relpath(target, self._datastore_path)
        with open(os.path.join(folder, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2)
        logger.info("moved %s of %s to %s", what, image_id, os.path.join(TRASH_DIR, entry))
        return os.path.join(TRASH_DIR, entry)

    def _label_entry(self, image_id: str, tag: str) -> tuple[str, str] | None:
        label = self._datastore.label(image_id, tag)
        if not label:
            return None
        name = image_id + label.ext
        source = os.path.join(self._datastore.label_path(tag), name)
        self.get_label_uri(image_id, tag)  # 403 when it resolves outside
        return (source, os.path.join(self._datastore.labels_dir, tag, name)) if os.path.lexists(source) else None

    def remove_label(self, label_id: str, label_tag: str) -> None:
        label_id, tag = check_image_id(label_id), check_tag(label_tag)
        entry = self._label_entry(label_id, tag)
        if entry is None:
            raise not_found(f"image {label_id!r} has no label with tag {tag!r}")
        if not self.allow_delete:
            raise forbidden(DELETE_HOWTO)
        with self._index_lock:  # checks above, moves here
            self._trash(label_id, [entry], f"label {tag}")
        self.refresh()

    def remove_image(self, image_id: str) -> None:
        image_id = check_image_id(image_id)
        self.require_image(image_id)  # 400 / 404 / 403 (outside)
        obj = self._datastore.objects[image_id]
        name = image_id + obj.image.ext
        moves = [e for e in (self._label_entry(image_id, tag) for tag in list(obj.labels)) if e]
        if not self.allow_delete:
            raise forbidden(DELETE_HOWTO)
        moves.append((os.path.join(self._datastore.image_path(), name),
                      os.path.normpath(os.path.join(self._datastore.images_dir, name))))
        with self._index_lock:
            self._trash(image_id, [m for m in moves if os.path.lexists(m[0])], "image and its labels")
        self.refresh()
