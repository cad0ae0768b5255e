"""The studies folder: MONAI Label's local datastore, made safe for annotators' work.

Layout (MONAI Label's, unchanged)::

    studies/
      <id>.dcm | <id>.nii.gz       raw DICOM MG mammograms, or NIfTI made from them
      labels/final/<id>.nii.gz      annotators' corrected labels (what training uses)
      labels/original/<id>.nii.gz   predictions saved with ?save_label=true
      labels/tpa/<id>.nii.gz        third-party labels (optional; scored by 'label_correction')
      datastore_v2.json             MONAI Label's index (written by the server)

What :class:`BACDatastore` adds to :class:`~monailabel.datastore.local.LocalDatastore`:

* it lists DICOM files (``*.dcm``) besides NIfTI (MONAI Label's default list has no DICOM);
* image ids and label tags are checked (no path separators, no ``..``): a request can never
  read or write outside the studies folder;
* a label is checked before anything is written: it must be a readable binary NIfTI mask on
  the image's pixel grid (same H x W), else HTTP 422 with the reason, and nothing is stored;
* labels are written atomically (temporary file + rename), and a label that is replaced keeps
  its previous version in ``studies/.monai_bac/label_history/<tag>/<id>.<time>.nii.gz``:
  no annotator's work is ever lost;
* an uploaded image must be a readable mammogram and may not replace an existing id (HTTP 409).
"""

from __future__ import annotations

import datetime as _dt
import gzip
import logging
import os
import re
import secrets
import shutil
import time
from typing import Any

from filelock import FileLock
from monailabel.datastore.local import DataModel, LocalDatastore
from monailabel.interfaces.datastore import DefaultLabelTag

from lib.errors import bad_request, conflict, not_found, scrub, unprocessable, unsupported
from lib.geometry import read_label_like

logger = logging.getLogger(__name__)

#: image ids: file names without extension (DICOM UIDs, phantom names, ...)
SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")
#: label tags: folder names under labels/
SAFE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
DEFAULT_EXTENSIONS = ("*.dcm", "*.nii.gz", "*.nii")
NIFTI_EXTS = (".nii.gz", ".nii")
HISTORY_DIR = os.path.join(".monai_bac", "label_history")


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


class BACDatastore(LocalDatastore):
    """:class:`LocalDatastore` for raw mammograms with validated, atomic, versioned label saves."""

    def __init__(self, datastore_path: str, images_dir: str = ".", extensions=DEFAULT_EXTENSIONS,
                 auto_reload: bool = False, read_only: bool = False):
        super().__init__(datastore_path, images_dir=images_dir, extensions=list(extensions),
                         auto_reload=auto_reload, read_only=read_only)

    # --- helpers ---------------------------------------------------------------------------
    def _scrub(self, message: str) -> str:
        return scrub(message, self._datastore_path)

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
        lower = str(label_filename).lower()
        if not lower.endswith(NIFTI_EXTS):
            suffix = "".join(os.path.basename(str(label_filename)).split(".", 1)[1:2])
            raise unsupported(f"label for {image_id!r}: only NIfTI labels (.nii.gz, .nii) are accepted, got "
                              f"{'a .' + suffix if suffix else 'an extension-less'} file")
        try:
            label, label_spacing = read_label_like(label_filename, image_path)
        except Exception as e:  # unreadable file, not binary, 3D, ...
            reason = self._scrub(str(e).replace(str(label_filename), "the uploaded label"))
            raise unprocessable(f"label for {image_id!r} is not a binary 2D NIfTI mask (0 = background, "
                                f"1 = bac): {reason}") from None
        try:
            (h, w), spacing = image_shape_spacing(image_path)
        except Exception as e:
            raise unprocessable(f"image {image_id!r} cannot be read, so no label can be checked against it: "
                                f"{self._scrub(str(e))}") from None
        lh, lw = (int(s) for s in label.shape)
        if (lh, lw) != (h, w):
            raise unprocessable(f"label for {image_id!r} is {lh} x {lw} pixels (rows x columns) but the image is "
                                f"{h} x {w}; a label must cover the image's own pixel grid. Nothing was saved.")
        info = dict(label_info or {})
        if spacing and label_spacing and any(abs(a - b) > 1e-3 * max(a, b) for a, b in zip(spacing, label_spacing)):
            logger.warning("label for %s has spacing %s mm, the image %s mm; saved (the pixel grid matches)",
                           image_id, label_spacing, spacing)
            info["spacing_mismatch_mm"] = [list(label_spacing), list(spacing)]
        info.update(shape=[h, w], bac_pixels=int((label > 0).sum()))
        return self._store_label(image_id, tag, label_filename, lower.endswith(".nii"), info)

    def _store_label(self, image_id: str, tag: str, source: str, gzip_it: bool, info: dict[str, Any]) -> str:
        label_dir = self._datastore.label_path(tag)
        dest = os.path.join(label_dir, image_id + ".nii.gz")
        with FileLock(self._lock_file):
            os.makedirs(label_dir, exist_ok=True)
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
            if os.path.isfile(old):
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
        if image_id in self._datastore.objects:
            raise conflict(f"image {image_id!r} already exists in the studies folder; choose another id "
                           "(an existing image is never replaced)")
        try:
            image = load_mammogram(image_filename)
        except Exception as e:
            raise unprocessable(f"image {image_id!r} is not a readable mammogram: "
                                f"{self._scrub(str(e).replace(str(image_filename), name))}") from None
        info = dict(image_info or {})
        info["shape"] = [int(s) for s in image.shape[-2:]]
        return super().add_image(image_id, image_filename, info)
