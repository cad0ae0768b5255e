"""A PACS as the studies (``--studies http://<pacs>/dicom-web``): MONAI Label's DICOMweb datastore for 2D mammograms.

MONAI Label's :class:`~monailabel.datastore.dicom.DICOMWebDatastore` is built for CT/MR volumes: an
image is a series converted to NIfTI, a label is written by dcmqi (``itkimage2segimage``, which it
downloads from the internet at start-up and which needs ImagePositionPatient, absent from 2D
mammograms), and the labelled state is cached for two hours. :class:`BACDicomWebDatastore` keeps
its cache folder and its DICOMweb client and changes what is wrong for mammograms:

* an image is one DICOM instance (a mammogram; a series may hold several views): its id is the
  SOPInstanceUID (the SeriesInstanceUID of a one-image series is accepted too), and it is served as the raw DICOM file itself (retrieved by WADO-RS into the
  cache) so the model reads the acquisition tags its physics needs; only ``Modality`` MG is
  listed (QIDO-RS), narrowed further by ``MONAI_LABEL_DICOMWEB_SEARCH_FILTER`` if set, and of
  those only the raw images: a processed rendition (SOPClassUID (0008,0016) Digital Mammography
  X-Ray Image Storage - For Presentation, which a PACS holds beside the raw one, or alone where the
  site does not archive raw images) is not listed, since the bundle does not segment it
  (``allow_processed`` false) and active learning would hand it out, nor is a tomosynthesis
  object (Modality MG as well: the volume and its projections), nor a view on a magnification
  stand (EstimatedRadiographicMagnificationFactor (0018,1114) 1.3 or more: a diagnostic view,
  ``monai_bac.data.views``). A spot compression view taken in contact says so only in
  ViewModifierCodeSequence (0054,0222), which QIDO-RS does not return: it is listed until the
  first time it is retrieved, when its whole header is read; from then on it is not listed and
  answers 404 saying why (active learning then draws again, :mod:`main`), after a restart too
  (the verdict is kept in the cache folder);
* a ``final`` label is checked against the image (binary, on its pixel grid) and stored back INTO
  the PACS (STOW-RS) as a DICOM SEG written by :func:`monai_bac.dicom_seg.write_dicom_seg`
  (highdicom, 2D-aware: the frame is referenced through the source image, no dcmqi), in the
  image's study, referencing the image (ReferencedSeriesSequence / ReferencedInstanceSequence);
  each save is a new SEG series, so earlier versions stay in the PACS;
* the labelled state is read from the PACS on every request (a QIDO query for SEG instances; the
  metadata of each SEG is fetched once): an image is labelled when a BAC SEG references it, whoever
  stored it, so active learning never hands out a labelled image again;
* a label is read back from the PACS: the newest BAC SEG of the image (ContentDate/ContentTime),
  decoded with highdicom into a NIfTI on the image's grid (:func:`lib.geometry.write_label_like`,
  the geometry of the app's other labels), cached until a newer SEG appears; training uses these;
* nothing is deleted in the PACS or uploaded as an image through MONAI Label (HTTP 403 / 405).

Labels with other tags (``original``: predictions saved with ``save_label``) stay in the cache.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import requests
from dicomweb_client import DICOMwebClient
from monai_bac.data.study_files import not_a_raw_screening_view
from monai_bac.dicom_seg import is_bac_segment, segment_algorithm
from monai_bac.utils import write_json
from monailabel.config import settings
from monailabel.datastore.dicom import DICOMwebClientX, DICOMWebDatastore
from monailabel.interfaces.datastore import DefaultLabelTag
from monailabel.utils.others.generic import md5_digest
from pydicom.dataset import Dataset

from lib.datastore import (MAX_PIXELS, MERGED_INFO_KEYS, check_image_id, check_tag, image_shape_spacing,
                           read_uploaded_label, with_provenance)
from lib.errors import AppError, NotServed, forbidden, not_found, scrub, unprocessable
from lib.geometry import write_label_like
from lib.shared_index import SharedIndexDatastore

logger = logging.getLogger(__name__)

FINAL = DefaultLabelTag.FINAL.value
#: QIDO attributes asked for each mammogram (besides the UIDs), kept as its image info
IMAGE_FIELDS = {"PatientID": "00100020", "StudyDate": "00080020", "ViewPosition": "00185101",
                "ImageLaterality": "00200062", "SOPClassUID": "00080016", "Rows": "00280010", "Columns": "00280011",
                "EstimatedRadiographicMagnificationFactor": "00181114"}
#: seconds the list of mammograms is reused (the labelled state is never cached)
LIST_TTL_S = 30.0
#: in the cache folder: SOPInstanceUID -> why, for the mammograms a retrieved header showed to be no raw
#: screening view (a SOPInstanceUID names one object for good, so the verdict outlives a restart)
UNLISTED_BY_HEADER_FILE = "unlisted_by_header.json"


def dicomweb_client(url: str) -> DICOMwebClient:
    """The DICOMweb client MONAI Label 0.8.5 builds for ``--studies <url>`` (``_init_dicomweb_datastore``),
    without its dcmqi download: basic auth from ``MONAI_LABEL_DICOMWEB_USERNAME`` / ``_PASSWORD``, the
    QIDO/WADO/STOW prefixes from ``MONAI_LABEL_QIDO_PREFIX`` / ``_WADO_`` / ``_STOW_``, Google Cloud's
    credentials for a ``googleapis.com`` URL."""
    url = url.rstrip("/").strip()
    if "googleapis.com" in url:
        from dicomweb_client.ext.gcp.session_utils import create_session_from_gcp_credentials

        return DICOMwebClient(url=url, session=create_session_from_gcp_credentials())
    session = None
    if settings.MONAI_LABEL_DICOMWEB_USERNAME and settings.MONAI_LABEL_DICOMWEB_PASSWORD:
        from dicomweb_client.session_utils import create_session_from_user_pass

        session = create_session_from_user_pass(settings.MONAI_LABEL_DICOMWEB_USERNAME,
                                                settings.MONAI_LABEL_DICOMWEB_PASSWORD)
    return DICOMwebClientX(url=url, session=session, qido_url_prefix=settings.MONAI_LABEL_QIDO_PREFIX,
                           wado_url_prefix=settings.MONAI_LABEL_WADO_PREFIX,
                           stow_url_prefix=settings.MONAI_LABEL_STOW_PREFIX)


def mammogram_filter(configured: dict[str, Any] | None) -> dict[str, Any]:
    """QIDO filter of the listed images: ``configured`` (MONAI_LABEL_DICOMWEB_SEARCH_FILTER) with Modality MG.

    MONAI Label's default filter is ``{"Modality": "CT"}``; any Modality but MG is replaced (logged).
    """
    search = dict(configured or {})
    if str(search.get("Modality", "MG")).upper() != "MG":
        logger.warning("DICOMweb search filter Modality %r replaced by MG: the app segments mammograms",
                       search["Modality"])
    search["Modality"] = "MG"
    return search


def _value(item: dict, tag: str) -> Any:
    values = (item.get(tag) or {}).get("Value") or [None]
    value = values[0]
    return value.get("Alphabetic") if isinstance(value, dict) else value


@dataclass(frozen=True)
class PacsImage:
    """Where one mammogram lives in the PACS."""

    study: str
    series: str
    instance: str
    info: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class PacsLabel:
    """A BAC DICOM SEG in the PACS and the mammogram it segments."""

    study: str
    series: str
    instance: str
    image: str  #: SOPInstanceUID of the referenced mammogram
    created: str  #: ContentDate + ContentTime, for choosing the newest
    description: str = ""
    made: str = ""  #: the BAC segment's SegmentAlgorithmType: AUTOMATIC, SEMIAUTOMATIC or MANUAL

    def info(self) -> dict[str, str]:
        return {"StudyInstanceUID": self.study, "SeriesInstanceUID": self.series, "SOPInstanceUID": self.instance,
                "SeriesDescription": self.description, "created": self.created, "Modality": "SEG",
                "SegmentAlgorithmType": self.made}


def bac_label_of(meta: Dataset) -> str | None:
    """The SOPInstanceUID of the image a BAC SEG's metadata references, None for any other SEG."""
    if not any(is_bac_segment(segment) for segment in meta.get("SegmentSequence") or []):
        return None
    for series in meta.get("ReferencedSeriesSequence") or []:
        for instance in series.get("ReferencedInstanceSequence") or []:
            if instance.get("ReferencedSOPInstanceUID"):
                return str(instance.ReferencedSOPInstanceUID)
    return None


def _made(meta: Dataset) -> str:
    """SegmentAlgorithmType (0062,0008) of a BAC SEG's BAC segment."""
    segment = next(s for s in meta.get("SegmentSequence") or [] if is_bac_segment(s))
    return segment_algorithm(segment)["type"]


def _not_served(image_id: str, why: str) -> NotServed:
    return NotServed(f"image {image_id!r} is {why}: the app segments and labels raw (FOR PROCESSING) screening "
                     "views; GET /datastore/?output=all lists them")


class BACDicomWebDatastore(DICOMWebDatastore, SharedIndexDatastore):
    """MONAI Label's DICOMweb datastore with one mammogram per image id and BAC labels stored as DICOM SEG."""

    merged_info_keys = MERGED_INFO_KEYS

    def __init__(self, client: DICOMwebClient, search_filter: dict[str, Any] | None = None,
                 cache_path: str | None = None, max_pixels: int = MAX_PIXELS, list_ttl_s: float = LIST_TTL_S):
        self._client = client
        self._search_filter = mammogram_filter(search_filter)
        self._fetch_by_frame = False
        self._convert_to_nifti = False
        self.max_pixels = int(max_pixels)
        self._list_ttl_s = float(list_ttl_s)
        self._lock = threading.RLock()
        self._images_cache: tuple[float, dict[str, PacsImage]] = (0.0, {})
        self._unlisted: dict[str, str] = {}  #: SOPInstanceUID -> why that mammogram is not listed
        #: SOPInstanceUID -> why, for what only the retrieved header told (QIDO-RS lacks the tag)
        self._unlisted_by_header: dict[str, str] = {}
        self._seg_index: dict[str, PacsLabel | None] = {}  #: SEG SOPInstanceUID -> its BAC label (None: not BAC)
        root = cache_path or os.path.join(os.path.expanduser("~"), ".cache", "monailabel", "dicom")
        path = os.path.join(root, md5_digest(client.base_url))
        logger.info("DICOMweb datastore %s (mammograms, BAC labels as DICOM SEG); cache %s", client.base_url, path)
        SharedIndexDatastore.__init__(self, datastore_path=path, extensions=("*.dcm", "*.nii.gz", "*.nii"),
                                      auto_reload=False)
        self._unlisted_by_header = self._read_unlisted_by_header()

    def _read_unlisted_by_header(self) -> dict[str, str]:
        path = os.path.join(self._datastore_path, UNLISTED_BY_HEADER_FILE)
        if not os.path.isfile(path):
            return {}
        try:
            with open(path) as f:
                found = json.load(f)
            return {str(k): str(v) for k, v in found.items()}
        except (OSError, ValueError, AttributeError) as e:
            logger.warning("%s unreadable (%s): the verdicts it held are read again from the images' headers",
                           self._clean(path), type(e).__name__)
            return {}

    @property
    def cache_path(self) -> str:
        """The folder of retrieved images and decoded labels (one per PACS URL)."""
        return self._datastore_path

    # --- talking to the PACS ----------------------------------------------------------------
    def _clean(self, text: str) -> str:
        return scrub(text, self._datastore_path)

    def _pacs(self, what: str, call: Callable, *args, **kwargs):
        """``call(*args, **kwargs)`` on the DICOMweb client; a PACS failure becomes a clear HTTP error."""
        try:
            return call(*args, **kwargs)
        except requests.HTTPError as e:
            status = e.response.status_code if e.response is not None else None
            if status == 404:
                raise not_found(f"the PACS has no {what}") from None
            if status in (401, 403):
                raise AppError(502, f"the PACS {self._client.base_url} refused {what} (HTTP {status}): set "
                                    "MONAI_LABEL_DICOMWEB_USERNAME / MONAI_LABEL_DICOMWEB_PASSWORD") from None
            raise AppError(502, f"the PACS {self._client.base_url} failed {what} (HTTP {status}): "
                                f"{self._clean(str(e))}") from None
        except requests.RequestException as e:
            raise AppError(503, f"the PACS {self._client.base_url} cannot be reached for {what} "
                                f"({type(e).__name__}); is it running?") from None

    def _images(self, refresh: bool = False) -> dict[str, PacsImage]:
        with self._lock:
            stamp, images = self._images_cache
            if not refresh and images and time.monotonic() - stamp < self._list_ttl_s:
                return images
        found = self._pacs("mammogram list (QIDO-RS)", self._client.search_for_instances,
                           search_filters=self._search_filter, fields=list(IMAGE_FIELDS.values()),
                           get_remaining=True)
        images, unlisted = {}, {}
        for item in found:
            uids = [_value(item, t) for t in ("0020000D", "0020000E", "00080018")]
            if not all(uids):
                continue
            why = self._unlisted_by_header.get(str(uids[2])) or not_a_raw_screening_view(Dataset.from_json(item))
            info = {k: _value(item, t) for k, t in IMAGE_FIELDS.items() if _value(item, t) is not None}
            if why:
                unlisted[str(uids[2])] = why
                continue
            images[str(uids[2])] = PacsImage(*(str(u) for u in uids), info=info)
        with self._lock:
            if set(unlisted) != set(self._unlisted):
                kinds = sorted(Counter(unlisted.values()).items())
                logger.info("%d mammogram(s) in the PACS not listed, the app serving raw screening views only: %s",
                            len(unlisted), "; ".join(f"{n} x {why}" for why, n in kinds))
            self._images_cache, self._unlisted = (time.monotonic(), images), unlisted
        return images

    def _labels(self) -> dict[str, PacsLabel]:
        """The newest BAC SEG of each image, read from the PACS now (new SEGs' metadata fetched once)."""
        found = self._pacs("SEG list (QIDO-RS)", self._client.search_for_instances,
                           search_filters={"Modality": "SEG"}, get_remaining=True)
        current: dict[str, PacsLabel] = {}
        for item in found:
            study, series, instance = (str(_value(item, t)) for t in ("0020000D", "0020000E", "00080018"))
            with self._lock:
                known = instance in self._seg_index
                label = self._seg_index.get(instance)
            if not known:
                label = self._read_seg_metadata(study, series, instance)
                with self._lock:
                    self._seg_index[instance] = label
            if label is not None and (label.image not in current or label.created > current[label.image].created):
                current[label.image] = label
        return current

    def _read_seg_metadata(self, study: str, series: str, instance: str) -> PacsLabel | None:
        meta = Dataset.from_json(self._pacs(f"metadata of SEG {instance}", self._client.retrieve_instance_metadata,
                                            study, series, instance))
        image = bac_label_of(meta)
        if image is None:
            logger.info("SEG %s is not a BAC label of a mammogram: ignored", instance)
            return None
        created = f"{meta.get('ContentDate', '')}{meta.get('ContentTime', '')}"
        return PacsLabel(study, series, instance, image, created, str(meta.get("SeriesDescription", "")),
                         _made(meta))

    def _locate(self, image_id: str) -> PacsImage:
        """The mammogram ``image_id`` names: its SOPInstanceUID, or the SeriesInstanceUID of a series holding
        only this mammogram (what MONAI Label's OHIF and series-based clients send)."""
        image_id = check_image_id(image_id)
        image = self._images().get(image_id) or self._images(refresh=True).get(image_id)
        if image is None:
            in_series = [i for i in self._images().values() if i.series == image_id]
            if len(in_series) > 1:
                raise AppError(409, f"series {image_id!r} holds {len(in_series)} mammograms; name one by its "
                                    "SOPInstanceUID (GET /datastore/?output=all lists them)")
            image = in_series[0] if in_series else None
        if image is None and image_id in self._unlisted:
            raise _not_served(image_id, self._unlisted[image_id])
        if image is None:
            raise not_found(f"image {image_id!r} is not a mammogram (Modality MG) in the PACS "
                            f"{self._client.base_url}; GET /datastore/?output=all lists the image ids "
                            "(SOPInstanceUIDs)")
        return image

    # --- images -----------------------------------------------------------------------------
    def list_images(self) -> list[str]:
        return list(self._images())

    def get_image_uri(self, image_id: str) -> str:
        """The mammogram's DICOM file in the cache, retrieved from the PACS (WADO-RS) the first time."""
        image = self._locate(image_id)
        path = os.path.join(self._datastore.image_path(), f"{image.instance}.dcm")
        with self._lock:
            if image.instance in self._datastore.objects and os.path.isfile(path):
                return os.path.realpath(path)
        dataset = self._pacs(f"image {image.instance} (WADO-RS)", self._client.retrieve_instance,
                             image.study, image.series, image.instance)
        why = not_a_raw_screening_view(dataset)  # the whole header: ViewModifierCodeSequence too
        if why:
            with self._lock:
                self._unlisted_by_header[image.instance] = self._unlisted[image.instance] = why
                self._images_cache[1].pop(image.instance, None)
                write_json(os.path.join(self._datastore_path, UNLISTED_BY_HEADER_FILE), self._unlisted_by_header)
            logger.info("mammogram %s no longer listed: %s", image.instance, why)
            raise _not_served(image.instance, why)
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = os.path.join(tmp, f"{image.instance}.dcm")
            dataset.save_as(tmp_path, write_like_original=False)
            with self._lock:
                SharedIndexDatastore.add_image(self, image.instance, tmp_path, {"SOPInstanceUID": image.instance,
                                                                          "StudyInstanceUID": image.study,
                                                                          "SeriesInstanceUID": image.series,
                                                                          **image.info})
        return os.path.realpath(path)

    def get_image_info(self, image_id: str) -> dict[str, Any]:
        image = self._locate(image_id)
        info = {"SOPInstanceUID": image.instance, "StudyInstanceUID": image.study, "SeriesInstanceUID": image.series,
                **image.info, **SharedIndexDatastore.get_image_info(self, image.instance)}
        info.pop("path", None)  # a server folder
        return info

    def update_image_info(self, image_id: str, info: dict[str, Any]) -> None:
        self.get_image_uri(image_id)  # the cache holds the info of the images it has
        SharedIndexDatastore.update_image_info(self, self._locate(image_id).instance, info)

    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        raise AppError(405, "images are not uploaded through MONAI Label when the studies are a PACS: store them "
                            "in the PACS (STOW-RS, C-STORE or its upload page) and they are listed here")

    def remove_image(self, image_id: str) -> None:
        raise forbidden("MONAI Label does not delete from the PACS; a PACS administrator deletes images there")

    def remove_label(self, label_id: str, label_tag: str) -> None:
        if check_tag(label_tag) == FINAL:
            raise forbidden("final labels are DICOM SEG series in the PACS; MONAI Label does not delete them (a "
                            "PACS administrator can; the image then counts as unlabelled again)")
        SharedIndexDatastore.remove_label(self, label_id, label_tag)

    # --- labels -----------------------------------------------------------------------------
    def get_labeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        images = self._images()
        return [i for i in self._labels() if i in images]

    def get_unlabeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        labelled = set(self._labels())
        return [i for i in self._images() if i not in labelled]

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any],
                   label_id: str = "") -> str:
        """Check the label against the image; a ``final`` one is stored in the PACS as a DICOM SEG (STOW-RS)."""
        tag = check_tag(label_tag)
        image_path = self.get_image_uri(image_id)
        image = self._locate(image_id)
        mask, checked = read_uploaded_label(image.instance, image_path, label_filename, self.max_pixels, self._clean)
        info = with_provenance({**(label_info or {}), **checked}, tag, lambda: self.get_image_info(image.instance))
        if tag != FINAL:
            return SharedIndexDatastore.save_label(self, image.instance, label_filename, tag, info)
        label = self._store_seg(image, image_path, mask, info["segment_algorithm"],
                                (info.get("annotator") or {}).get("person_name"))
        info.update(label.info())
        with self._lock:
            self._seg_index[label.instance] = label
        self._cache_label(image, image_path, mask, info)
        logger.info("label of %s stored in the PACS as SEG series %s", image.instance, label.series)
        return image.instance

    def _store_seg(self, image: PacsImage, image_path: str, mask, making: dict[str, Any],
                   person: str | None = None) -> PacsLabel:
        import pydicom

        from monai_bac.dicom_seg import DicomSegError, write_dicom_seg

        with tempfile.TemporaryDirectory() as tmp:
            seg_path = os.path.join(tmp, "label_seg.dcm")
            try:
                write_dicom_seg(seg_path, mask, image_path, series_description="BAC label (MONAI Label, final)",
                                content_creator_name=person, **making)
            except DicomSegError as e:
                raise unprocessable(f"the label of image {image.instance!r} cannot be written as a DICOM SEG: "
                                    f"{self._clean(str(e))}") from None
            seg = pydicom.dcmread(seg_path)
        answer = self._pacs(f"the SEG of image {image.instance} (STOW-RS)", self._client.store_instances, [seg])
        failed = answer.get("FailedSOPSequence") if answer is not None else None
        if failed:
            reasons = [str(item.get("FailureReason", "?")) for item in failed]
            raise AppError(502, f"the PACS {self._client.base_url} did not store the SEG of image "
                                f"{image.instance!r} (failure reason {', '.join(reasons)}); nothing was saved")
        created = f"{seg.get('ContentDate', '')}{seg.get('ContentTime', '')}"
        return PacsLabel(str(seg.StudyInstanceUID), str(seg.SeriesInstanceUID), str(seg.SOPInstanceUID),
                         image.instance, created, str(seg.get("SeriesDescription", "")), making["algorithm_type"])

    def _cache_label(self, image: PacsImage, image_path: str, mask, info: dict[str, Any]) -> str:
        """The label as a NIfTI on the image's grid in the cache (what GET /datastore/label and training read)."""
        _, spacing = image_shape_spacing(image_path)
        with tempfile.TemporaryDirectory() as tmp:
            nifti = write_label_like(mask, image_path, spacing, os.path.join(tmp, f"{image.instance}.nii.gz"))
            with self._lock:
                SharedIndexDatastore.save_label(self, image.instance, nifti, FINAL, info)
        return SharedIndexDatastore.get_label_uri(self, image.instance, FINAL)

    def _image_of_label(self, label_id: str, labels: dict[str, PacsLabel]) -> str:
        """The image id a label id names: the image's id (:meth:`_locate`), or its SEG's series or instance UID."""
        label_id = check_image_id(label_id)
        if label_id in labels:
            return label_id
        for image, label in labels.items():
            if label_id in (label.series, label.instance):
                return image
        return self._locate(label_id).instance

    def get_label_uri(self, label_id: str, label_tag: str, image_id: str = "") -> str:
        """A ``final`` label: the newest BAC SEG of the image in the PACS, as a NIfTI on the image's grid."""
        if check_tag(label_tag) != FINAL:
            return SharedIndexDatastore.get_label_uri(self, check_image_id(label_id), label_tag)
        labels = self._labels()
        image_id = image_id or self._image_of_label(label_id, labels)
        label = labels.get(image_id)
        if label is None:
            raise not_found(f"image {image_id!r} has no BAC label (DICOM SEG) in the PACS yet")
        image_path = self.get_image_uri(image_id)
        cached = SharedIndexDatastore.get_label_uri(self, image_id, FINAL)
        if cached and os.path.isfile(cached) and \
                SharedIndexDatastore.get_label_info(self, image_id, FINAL).get("SOPInstanceUID") == label.instance:
            return cached
        return self._cache_label(self._locate(image_id), image_path, self._read_seg(label, image_path),
                                 {**label.info(), "source": "PACS"})

    def _read_seg(self, label: PacsLabel, image_path: str):
        from monai_bac.dicom_seg import read_dicom_seg

        dataset = self._pacs(f"SEG {label.instance} (WADO-RS)", self._client.retrieve_instance,
                             label.study, label.series, label.instance)
        (h, w), _ = image_shape_spacing(image_path)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "seg.dcm")
            dataset.save_as(path, write_like_original=False)
            try:
                mask = read_dicom_seg(path, source_uid=label.image)
            except Exception as e:  # a SEG another tool wrote in a form highdicom cannot map to the image
                raise unprocessable(f"the SEG {label.instance} of image {label.image!r} in the PACS cannot be read "
                                    f"as a BAC mask ({type(e).__name__}: {self._clean(str(e))})") from None
        if mask.shape != (h, w):
            raise unprocessable(f"the SEG {label.instance} of image {label.image!r} is {mask.shape[0]} x "
                                f"{mask.shape[1]} pixels but the image is {h} x {w}")
        return mask

    def get_label_info(self, label_id: str, label_tag: str) -> dict[str, Any]:
        if check_tag(label_tag) == FINAL:
            self.get_label_uri(label_id, FINAL)
            label_id = self._image_of_label(label_id, self._labels())
        return SharedIndexDatastore.get_label_info(self, check_image_id(label_id), label_tag)

    def datalist(self, full_path: bool = True) -> list[dict[str, Any]]:
        """(image, final label) file pairs of every mammogram with a BAC SEG in the PACS; a SEG that cannot
        be read is skipped (logged), not a reason to stop the training."""
        pairs = []
        for image_id in self.get_labeled_images():
            try:
                label = self.get_label_uri(image_id, FINAL)
                pairs.append({"image": self.get_image_uri(image_id), "label": label})
            except AppError as e:
                logger.warning("training leaves out image %s: %s", image_id, e.detail)
        return pairs

    # --- listing ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        labelled = self.get_labeled_images()
        tags: dict[str, int] = {}
        for obj in self._datastore.objects.values():  # other tags live in the cache only
            for tag in obj.labels:
                tags[tag] = tags.get(tag, 0) + (tag != FINAL)
        return {"total": len(self._images()), "completed": len(labelled), "label_tags": {**tags, FINAL: len(labelled)}}

    def json(self) -> dict[str, Any]:
        """Every mammogram of the PACS (``GET /datastore/?output=all``) with its ``final`` label (its SEG)."""
        cached = SharedIndexDatastore.json(self)
        labels = self._labels()
        objects = {}
        for image_id, image in self._images().items():
            obj = cached["objects"].get(image_id) or {"image": {"ext": ".dcm", "info": {}}, "labels": {}}
            obj["image"]["info"] = {"SOPInstanceUID": image.instance, "StudyInstanceUID": image.study,
                                    "SeriesInstanceUID": image.series, **image.info, **obj["image"]["info"]}
            obj["labels"] = {t: v for t, v in obj["labels"].items() if t != FINAL}
            if image_id in labels:
                obj["labels"][FINAL] = {"ext": ".dcm", "info": labels[image_id].info()}
            objects[image_id] = obj
        return {**cached, "name": self._client.base_url, "objects": objects}
