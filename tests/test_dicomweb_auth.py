"""The PACS credentials MONAI Label 0.8.5 really reads, against a real Orthanc with authentication on.

monailabel reads its settings from the environment when it is imported, as at server start; each
check therefore runs the app's DICOMweb client (``lib.dicomweb.dicomweb_client``) in a fresh process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("monailabel", reason="the MONAI Label app needs the [label] extra (monailabel)")

from orthanc_utils import missing_reason, start_orthanc, stop_orthanc  # noqa: E402

pytestmark = pytest.mark.label

APP = Path(__file__).resolve().parents[1] / "monailabel_app"
QUERY = (
    "import sys; sys.path.insert(0, sys.argv[2]); from lib.dicomweb import dicomweb_client; "
    "print('studies', len(dicomweb_client(sys.argv[1]).search_for_studies()))"
)


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = start_orthanc(tmp_path_factory.mktemp("orthanc-auth"), users={"annotator": "s3cret"})
    yield server
    stop_orthanc(server)


def _query(pacs, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MONAI_LABEL_")}
    return subprocess.run([sys.executable, "-c", QUERY, pacs.dicomweb, str(APP)], env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_dicomweb_credentials_are_the_ones_monailabel_reads(pacs):
    right = _query(pacs, MONAI_LABEL_DICOMWEB_USERNAME="annotator", MONAI_LABEL_DICOMWEB_PASSWORD="s3cret")
    assert right.returncode == 0 and "studies 0" in right.stdout, right.stderr[-2000:]
    # the names an earlier README gave are not read by monailabel 0.8.5: the PACS answers 401
    old_names = _query(pacs, MONAI_LABEL_DATASTORE_USERNAME="annotator", MONAI_LABEL_DATASTORE_PASSWORD="s3cret")
    assert old_names.returncode != 0 and "401" in old_names.stderr, old_names.stdout + old_names.stderr[-2000:]
