"""Start and stop a real Orthanc PACS with its DICOMweb plugin (Debian's ``orthanc``, ``orthanc-dicomweb``).

The server listens on 127.0.0.1 only: remote access off, the DICOM (C-STORE) port off, storage in a
temporary folder. Tests skip, saying why, where the packages are not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import requests

from monailabel_utils import HOST, free_port, stop_process_group, wait_until_answering

PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc/plugins")
DICOMWEB_PLUGIN = "libOrthancDicomWeb.so"


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if Path(p).is_file()), None)


def dicomweb_plugin() -> Path | None:
    for folder in PLUGIN_DIRS:
        plugin = Path(folder) / DICOMWEB_PLUGIN
        if plugin.is_file():
            return plugin
    return None


def missing_reason() -> str | None:
    """Why Orthanc + DICOMweb cannot run here (None when they can)."""
    if orthanc_binary() is None:
        return "Orthanc is not installed (Debian: apt-get install orthanc orthanc-dicomweb)"
    if dicomweb_plugin() is None:
        return "Orthanc's DICOMweb plugin is not installed (Debian: apt-get install orthanc-dicomweb)"
    return None


@dataclass
class Orthanc:
    url: str  # REST root, e.g. http://127.0.0.1:8042
    process: subprocess.Popen
    log: Path

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    auth: tuple[str, str] | None = None

    def upload(self, path: Path) -> dict:
        """Store one DICOM file through Orthanc's REST API (``POST /instances``)."""
        answer = requests.post(f"{self.url}/instances", data=Path(path).read_bytes(), timeout=30, auth=self.auth)
        answer.raise_for_status()
        return answer.json()

    def instances(self) -> list[str]:
        return requests.get(f"{self.url}/instances", timeout=10, auth=self.auth).json()


def start_orthanc(workdir: Path, timeout_s: float = 60.0, users: dict[str, str] | None = None) -> Orthanc:
    """Start Orthanc on a free loopback port with the DICOMweb plugin and wait until it answers.

    ``users`` (name -> password) turns HTTP basic authentication on, as a hospital PACS has it.
    """
    reason = missing_reason()
    if reason:
        raise RuntimeError(reason)
    workdir = Path(workdir)
    (workdir / "storage").mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "Name": "monai-bac-test",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "storage"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,  # Orthanc 1.10 has no bind address: it refuses non-loopback peers
        "AuthenticationEnabled": bool(users),
        "RegisteredUsers": dict(users or {}),
        "DicomServerEnabled": False,
        "Plugins": [str(dicomweb_plugin())],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "WadoRoot": "/wado",
                     "Ssl": False, "StudiesMetadata": "Full", "SeriesMetadata": "Full"},
        "StableAge": 1,
    }
    conf_path = workdir / "orthanc.json"
    conf_path.write_text(json.dumps(config, indent=2))
    log = workdir / "orthanc.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([orthanc_binary(), str(conf_path)], stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = Orthanc(f"http://{HOST}:{port}", process, log, next(iter(users.items())) if users else None)
    wait_until_answering(process, f"{server.url}/system", (200, 401), timeout_s, "Orthanc", server.log_tail,
                         stop=lambda: stop_orthanc(server))
    return server


def stop_orthanc(server: Orthanc, grace_s: float = 15.0) -> None:
    stop_process_group(server.process, grace_s)
