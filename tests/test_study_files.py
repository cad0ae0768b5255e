"""A study as a PACS exports it: raw images, their processed renditions and non-image objects
(monai_bac.data.study_files), read by the library and by ``monai-bac infer``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from monai_bac.bundle_support import DatalistError, inference_items
from monai_bac.cli import main
from monai_bac.data import write_mammogram_dicom
from monai_bac.data.dicom_write import save_dataset
from monai_bac.data.study_files import files_to_leave_out
from monai_bac.dicom_seg import write_dicom_seg
from monai_bac.phantom import make_phantom
from monai_bac.presentation import write_presentation

STUDY = generate_uid()
STUDY_TAGS = {"StudyDate": "20260112", "StudyTime": "092500", "StudyID": "S7", "AccessionNumber": "A7"}
ACQUIRED = {"AcquisitionDate": "20260112", "AcquisitionTime": "093012"}
BREAST_TOMOSYNTHESIS = "1.2.840.10008.5.1.4.1.1.13.1.3"


def _mammogram(path: Path, view: str, laterality: str, presentation: str = "FOR PROCESSING", acquired=ACQUIRED,
               extra_sop: str | None = None, **tags) -> Path:
    """A phantom mammogram of patient P7's study (``extra_sop``: written under that SOP class instead)."""
    sop = {"SOPClassUID": extra_sop, "MediaStorageSOPClassUID": extra_sop} if extra_sop else {}
    ph = make_phantom(seed=5, spacing_mm=1.0, view=view, laterality=laterality)
    m = ph.meta
    return write_mammogram_dicom(path, ph.raw, spacing_mm=m["spacing_mm"], kvp=m["kvp"], thickness_mm=m["thickness_mm"],
                                 anode=m["anode"], filter=m["filter"], view=view, laterality=laterality,
                                 manufacturer=m["manufacturer"], presentation=presentation,
                                 photometric=m["photometric"], bits_stored=m["bits_stored"], patient_id="P7",
                                 study_uid=STUDY, extra={**STUDY_TAGS, **acquired, **sop}, **tags)


def _structured_report(path: Path) -> Path:
    """A Basic Text SR (as a dose or CAD report sits in the study): a header, no pixels."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.preamble = b"\0" * 128
    ds.Modality, ds.StudyInstanceUID, ds.PatientID = "SR", STUDY, "P7"
    save_dataset(ds, path)
    return path


def _dicomdir(folder: Path, instance: Path) -> Path:
    """The DICOMDIR pydicom's FileSet writes for one instance (its copy of the instance is removed)."""
    from pydicom.fileset import FileSet

    fs = FileSet()
    fs.add(str(instance))
    fs.write(str(folder))
    for f in folder.rglob("*"):
        if f.is_file() and f.name != "DICOMDIR":
            f.unlink()
    return folder / "DICOMDIR"


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict[str, Path]:
    """One patient's four raw views and, beside them, what a PACS export holds too (the tomosynthesis
    object is a 2D image under the Breast Tomosynthesis SOP class: only its header is read)."""
    folder = tmp_path_factory.mktemp("study")
    files = {f"{lat}{view}": _mammogram(folder / f"raw_{lat}{view}.dcm", view, lat)
             for lat in "LR" for view in ("CC", "MLO")}
    # renditions: one naming its raw in SourceImageSequence, one from the same exposure (no reference)
    files["rendition_named"] = write_presentation(files["LCC"], folder / "pres_LCC.dcm")
    files["rendition_same_time"] = _mammogram(folder / "pres_RMLO.dcm", "MLO", "R", "FOR PRESENTATION")
    # renditions of no raw in the run: another exposure of the same view, and a view the run lacks
    files["rendition_other_time"] = _mammogram(folder / "pres_RCC_later.dcm", "CC", "R", "FOR PRESENTATION",
                                               {"AcquisitionDate": "20260112", "AcquisitionTime": "094500"})
    files["rendition_magnified"] = _mammogram(folder / "pres_LCC_mag.dcm", "CC", "L", "FOR PRESENTATION",
                                              view_modifiers=("magnification",), magnification=1.8)
    files["tomosynthesis"] = _mammogram(folder / "dbt_LCC.dcm", "CC", "L", extra_sop=BREAST_TOMOSYNTHESIS)
    files["report"] = _structured_report(folder / "dose_report.dcm")
    files["seg"] = write_dicom_seg(folder / "old_seg.dcm", np.zeros(pydicom.dcmread(files["LCC"]).pixel_array.shape,
                                                                     np.uint8), files["LCC"])
    files["dicomdir"] = _dicomdir(folder / "export", files["LMLO"])
    (folder / "notes").write_text("not DICOM")  # left to the reader, which names what is wrong
    files["notes"] = folder / "notes"
    return files


def test_what_a_run_of_raw_mammograms_leaves_out_and_why(study):
    left = files_to_leave_out([str(p) for p in study.values()])
    assert set(left) == {str(study[k]) for k in ("rendition_named", "rendition_same_time", "report", "seg", "dicomdir",
                                                 "tomosynthesis")}
    assert left[str(study["tomosynthesis"])] == (f"not a 2D mammogram: Breast Tomosynthesis Image Storage (SOPClassUID "
                                                 f"(0008,0016) {BREAST_TOMOSYNTHESIS}), a reconstructed tomosynthesis "
                                                 "volume (slices, not a projection)")
    assert left[str(study["rendition_named"])] == (
        f"the processed (FOR PRESENTATION) rendition of {study['LCC']} (SourceImageSequence (0008,2112)), whose raw "
        "image this run reads")
    assert left[str(study["rendition_same_time"])].startswith(
        f"the processed (FOR PRESENTATION) rendition of {study['RMLO']} (the same study, laterality, view and "
        "acquisition time)")
    assert left[str(study["report"])] == ("not a mammogram: Basic Text SR Storage (SOPClassUID (0008,0016) "
                                          "1.2.840.10008.5.1.4.1.1.88.11), Modality (0008,0060) SR")
    assert left[str(study["seg"])].startswith("not a mammogram: Segmentation Storage")
    assert left[str(study["dicomdir"])] == ("not an image: Media Storage Directory Storage (SOPClassUID (0008,0016) "
                                            "1.2.840.10008.1.3.10), no pixel matrix (Rows (0028,0010) absent)")
    # without its raw image in the run, a rendition is not left out (reading it is refused, or forced)
    alone = [str(study[k]) for k in ("rendition_named", "rendition_same_time", "RCC")]
    assert files_to_leave_out(alone) == {}


def test_only_regular_dicom_files_are_opened(tmp_path):
    """A FIFO among the inputs (a datalist may name one) is never opened, which would block: it is left to
    the reader, which refuses it by name; so is a file that is not DICOM."""
    import os
    import threading

    fifo = tmp_path / "pipe.dcm"
    os.mkfifo(fifo)
    (tmp_path / "label.nii.gz").write_bytes(b"not a DICOM file")
    found, inputs = {}, [str(fifo), str(tmp_path / "label.nii.gz")]
    worker = threading.Thread(target=lambda: found.update(files_to_leave_out(inputs)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "files_to_leave_out blocked on a FIFO"
    assert found == {}


def test_infer_over_an_exported_study_reads_each_raw_view_once(study, tiny_bundle, tmp_path):
    folder = study["LCC"].parent
    out = tmp_path / "out"
    rc = main(["infer", str(folder), "--model", str(tiny_bundle), "--out", str(out), "--quiet", "--no-overlay"])
    with open(out / "results.csv") as f:
        rows = {Path(r["source"]).name: r for r in csv.DictReader(f)}
    status = {name: r["status"] for name, r in rows.items()}
    assert status == {"raw_LCC.dcm": "ok", "raw_LMLO.dcm": "ok", "raw_RCC.dcm": "ok", "raw_RMLO.dcm": "ok",
                      "pres_LCC.dcm": "left out", "pres_RMLO.dcm": "left out", "dose_report.dcm": "left out",
                      "old_seg.dcm": "left out", "DICOMDIR": "left out", "dbt_LCC.dcm": "left out",
                      "pres_RCC_later.dcm": "failed", "pres_LCC_mag.dcm": "failed", "notes": "failed"}
    assert "FOR PRESENTATION" in rows["pres_RCC_later.dcm"]["reason"] and "not a DICOM file" in rows["notes"]["reason"]
    assert rc == 3  # the two renditions without their raw image, and the file that is not DICOM
    assert not (out / "pres_LCC_bac.json").exists()  # nothing is written for a file left out
    run = json.loads((out / "run.json").read_text())
    assert run["counts"] == {"ok": 4, "left out": 6, "failed": 3}
    assert {Path(x["source"]).name for x in run["left_out"]} == {n for n, s in status.items() if s == "left out"}
    with open(out / "patients.csv") as f:
        (patient,) = list(csv.DictReader(f))
    assert (patient["patient_id"], patient["n_images"], patient["n_failed"]) == ("P7", "4", "0")
    assert patient["complete_4_views"] == "True"


def test_the_bundles_inference_over_an_exported_study_reads_its_raw_views(study, tiny_bundle, tmp_path):
    """``python -m monai.bundle run inference --input_path <folder>`` (inference_items) leaves out the same
    files: over a study of raw views, their renditions, a tomosynthesis object, an SR, a SEG and a
    DICOMDIR, the run ends and writes one mask per raw view."""
    import shutil

    from conftest import BUNDLE, run_workflow

    folder = tmp_path / "study"
    folder.mkdir()
    for key in ("LCC", "LMLO", "RCC", "RMLO", "rendition_named", "rendition_same_time", "tomosynthesis", "report",
                "seg"):
        shutil.copy(study[key], folder)
    shutil.copy(study["dicomdir"], folder / "DICOMDIR")
    kept = [Path(item["image"]).name for item in inference_items(str(folder))]
    assert kept == ["raw_LCC.dcm", "raw_LMLO.dcm", "raw_RCC.dcm", "raw_RMLO.dcm"]
    assert len(inference_items(str(folder), leave_out=False)) == 10  # monai-bac infer reports each itself
    out = tmp_path / "pred"
    run_workflow([BUNDLE / "configs" / "inference.json"], workflow_type="infer", bundle_root=str(tiny_bundle),
                 input_path=str(folder), output_dir=str(out))
    assert sorted(p.name for p in out.glob("*_bac.nii.gz")) == [f"raw_{v}_bac.nii.gz" for v in ("LCC", "LMLO", "RCC",
                                                                                                 "RMLO")]
    only_reports = tmp_path / "reports"
    only_reports.mkdir()
    shutil.copy(study["report"], only_reports)
    with pytest.raises(DatalistError, match=r"reports holds no raw mammogram: its 1 file\(s\) were left out \(e\.g\. "
                                            r".*dose_report\.dcm: not a mammogram: Basic Text SR Storage"):
        inference_items(str(only_reports))


@pytest.mark.label
def test_the_label_apps_studies_folder_lists_raw_screening_views_only(study, tmp_path, monkeypatch):
    """The MONAI Label app's local datastore, over a studies folder a study was copied into: the raw views
    are listed; their renditions, a magnification view, the tomosynthesis objects (a volume, a projection set)
    and the reports are not."""
    pytest.importorskip("monailabel", reason="the MONAI Label app's datastore runs in the label world")
    import shutil
    import sys

    from conftest import REPO

    studies = tmp_path / "studies"
    studies.mkdir()
    for key in ("LCC", "LMLO", "RCC", "RMLO", "rendition_named", "rendition_same_time", "rendition_magnified",
                "tomosynthesis", "report", "seg"):
        shutil.copy(study[key], studies)
    _mammogram(studies / "raw_LCC_mag.dcm", "CC", "L", view_modifiers=("magnification", "spot compression"),
               magnification=1.8)
    from monai_bac.data.dicom_write_projection import write_breast_projection_dicom

    lcc = pydicom.dcmread(study["LCC"])
    write_breast_projection_dicom(studies / "projections_LCC.dcm", np.stack([lcc.pixel_array] * 3),
                                  angles_deg=[-10, 0, 10], spacing_mm=(1.0, 1.0), kvp=28, thickness_mm=50,
                                  anode="TUNGSTEN", filter="RHODIUM", view="CC", laterality="L", manufacturer="HOLOGIC",
                                  photometric=lcc.PhotometricInterpretation, bits_stored=int(lcc.BitsStored))
    sys.path.insert(0, str(REPO / "monailabel_app"))
    try:
        from lib.datastore import BACDatastore
        from lib.errors import AppError
    finally:
        sys.path.remove(str(REPO / "monailabel_app"))
    import monai_bac.data.study_files as study_files

    read = []
    screen = study_files.not_a_raw_screening_view
    monkeypatch.setattr(study_files, "not_a_raw_screening_view", lambda p: read.append(p) or screen(p))
    store = BACDatastore(str(studies))
    assert sorted(store.list_images()) == ["raw_LCC", "raw_LMLO", "raw_RCC", "raw_RMLO"]
    # a refresh lists the folder again, but reads a header again only where its file changed
    first = len(read)
    assert first == 12
    store.refresh()
    assert len(read) == first
    shutil.copy(study["rendition_other_time"], studies / "raw_RCC_copy.dcm")  # a new file: one more read
    store.refresh()
    assert len(read) == first + 1 and "raw_RCC_copy" not in store.list_images()
    # an upload that would never be listed is refused, and nothing is saved
    with pytest.raises(AppError) as refused:
        store.add_image("uploaded", str(study["rendition_other_time"]), {})
    assert refused.value.status_code == 422
    assert "'uploaded' is a processed (FOR PRESENTATION) mammogram" in refused.value.detail
    assert not list(studies.glob("uploaded*"))


@pytest.mark.label
def test_what_an_earlier_index_held_is_no_longer_listed_and_its_files_stay(study, tmp_path):
    """A studies folder first served by MONAI Label's own datastore (or by this app before a rule) has every
    ``*.dcm`` in its index (datastore_v2.json), which MONAI Label keeps until a file goes: the app's datastore,
    started on it, lists the raw views only, and leaves every file where it was."""
    pytest.importorskip("monailabel", reason="the MONAI Label app's datastore runs in the label world")
    import json
    import shutil
    import sys

    from monailabel.datastore.local import LocalDatastore

    from conftest import REPO

    studies = tmp_path / "studies"
    studies.mkdir()
    for key in ("LCC", "rendition_named", "report", "tomosynthesis"):
        shutil.copy(study[key], studies)
    LocalDatastore(str(studies), extensions=["*.dcm"])
    index = studies / "datastore_v2.json"
    assert set(json.loads(index.read_text())["objects"]) == {"raw_LCC", "pres_LCC", "dose_report", "dbt_LCC"}
    sys.path.insert(0, str(REPO / "monailabel_app"))
    try:
        from lib.datastore import BACDatastore
    finally:
        sys.path.remove(str(REPO / "monailabel_app"))
    store = BACDatastore(str(studies))
    assert store.list_images() == ["raw_LCC"]
    assert set(json.loads(index.read_text())["objects"]) == {"raw_LCC"}
    assert sorted(p.name for p in studies.glob("*.dcm")) == ["dbt_LCC.dcm", "dose_report.dcm", "pres_LCC.dcm",
                                                             "raw_LCC.dcm"]
