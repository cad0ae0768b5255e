"""MONAI Label app of monai-bac: serves the BAC bundle to 3D Slicer / OHIF for active learning.

    monailabel start_server --app monailabel_app --studies <folder> --conf models bac --host 127.0.0.1 --port 8000

See README.md in this folder. Everything about the model (preprocessing, network, threshold,
training recipe) is read from the bundle (``--conf bundle_path``, default the repository's
``bundle/``); this file only wires MONAI Label's pieces together and turns bad requests into
clear HTTP errors (400/403/404/409/413/415/422/503 with a JSON ``detail``), never a stack trace.

Inside the server process the app also hardens MONAI Label's FastAPI app (``monailabel.app.app``,
built before this file is imported): no CORS unless an allow-list is given, a request guard
(:class:`RequestGuard`: Host and Origin checks, admin endpoints, body size, no absolute paths
in JSON answers) and JSON exception handlers. Threat model and settings: docs/SECURITY.md.
"""

from __future__ import annotations

import contextvars
import copy
import json
import logging
import os
import socket
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

from monailabel.config import settings
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.datastore import Datastore, DefaultLabelTag
from monailabel.utils.others.generic import handle_torch_linalg_multithread

import monai_bac
from lib.activelearning.strategies import RandomUnlabeled
from lib.annotator import note_verified, requester
from lib.configs import CONFIGS
from lib.datastore import (DEFAULT_EXTENSIONS, MAX_PIXELS, PREDICTION_SERVED_KEY, BACDatastore, check_image_id,
                           check_upload)
from lib.dicomweb import BACDicomWebDatastore, dicomweb_client
from lib.errors import NotServed, bad_request, folder_scrubber, install_exception_handlers, not_found

logger = logging.getLogger(__name__)

TRUE = ("1", "true", "yes", "on")
#: draws of an active-learning strategy per request: an image found, on retrieval, to be no screening view
#: (a PACS's contact spot view) leaves the list and the strategy draws again
NEXT_SAMPLE_DRAWS = 20
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD"})

#: files MONAI Label's /infer endpoint wrote from this request's uploads (``file=``, ``label=``)
_UPLOADS: contextvars.ContextVar[frozenset] = contextvars.ContextVar("monai_bac_uploads", default=frozenset())


def _setting(conf: dict, key: str, default: str = "") -> str:
    """``--conf key value``, else the environment variable ``MONAI_BAC_<KEY>``, else ``default``."""
    value = conf.get(key)
    return str(os.environ.get(f"MONAI_BAC_{key.upper()}", default) if value is None else value).strip()


def _origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case, as browsers send it in ``Origin`` (no path, no trailing /)."""
    parts = urlsplit(str(value).strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"CORS origin {value!r} is not an http(s) origin like https://ohif.example.org; a wildcard "
                         "('*') is not allowed: list the viewers' origins")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _hostname(host: str) -> str:
    """The name part of a ``Host`` header value (``[::1]:8000`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class ServerPolicy:
    """What the server lets in; built from ``--conf`` keys / environment (docs/SECURITY.md has the table).

    (A plain class: MONAI Label loads main.py without registering it in ``sys.modules``, which
    ``dataclasses`` needs.)
    """

    def __init__(self, cors_origins=(), allowed_hosts: frozenset[str] | None = LOOPBACK_NAMES,
                 admin_endpoints: bool = False, auth: bool = False, max_upload_bytes: int = 512 << 20,
                 dicomweb: bool = False, folders: dict[str, str] | None = None, auth_algorithms=("RS256",)):
        self.cors_origins = tuple(cors_origins)
        self.allowed_hosts = allowed_hosts  #: None: any Host header
        self.admin_endpoints = admin_endpoints  #: weights, logs, /reload without auth; weight upload at all
        self.auth = auth  #: MONAI Label's own authentication (MONAI_LABEL_AUTH_ENABLE)
        self.auth_algorithms = tuple(auth_algorithms)  #: JWT algorithms accepted from the realm
        self.max_upload_bytes = int(max_upload_bytes)
        self.dicomweb = dicomweb
        self.folders = {k: v for k, v in (folders or {}).items() if v}  #: replaced by <name> in JSON answers
        self._clean = folder_scrubber(self.folders)

    @classmethod
    def from_conf(cls, conf: dict, folders: dict[str, str], dicomweb: bool = False) -> "ServerPolicy":
        origins = [str(o) for o in settings.MONAI_LABEL_CORS_ORIGINS or []]
        origins += [o for o in _setting(conf, "cors_origins").split(",") if o.strip()]
        hosts = [h.strip().lower() for h in _setting(conf, "allowed_hosts").split(",") if h.strip()]
        try:
            machine = {socket.gethostname().lower()}
        except OSError:
            machine = set()
        return cls(
            cors_origins=tuple(dict.fromkeys(_origin(o) for o in origins)),
            allowed_hosts=None if "*" in hosts else frozenset(LOOPBACK_NAMES | machine | set(hosts)),
            admin_endpoints=_setting(conf, "admin_endpoints", "false").lower() in TRUE,
            auth=bool(settings.MONAI_LABEL_AUTH_ENABLE),
            auth_algorithms=_auth_algorithms(conf),
            max_upload_bytes=int(float(_setting(conf, "max_upload_mb", "512")) * (1 << 20)),
            dicomweb=dicomweb,
            folders=folders,
        )

    def clean(self, text: str) -> str:
        return self._clean(text)

    def refusal(self, scope: dict, headers: dict[str, str]) -> tuple[int, str] | None:
        """(status, message) when the request must not reach MONAI Label, else None."""
        method = scope["method"]
        path = scope["path"]
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root):]
        prefix = settings.MONAI_LABEL_API_STR or ""
        if prefix and path.startswith(prefix):
            path = path[len(prefix):]
        if ".." in path.split("/"):
            return 400, "'..' is not allowed in a request path"
        host = headers.get("host", "")
        server = (scope.get("server") or (None,))[0]
        if host and self.allowed_hosts is not None and _hostname(host) not in self.allowed_hosts \
                and _hostname(host) != str(server).lower():
            return 403, (f"Host {_hostname(host)!r} is not a name of this server (a guard against DNS rebinding); "
                         "an admin can add it with --conf allowed_hosts <name> (or MONAI_BAC_ALLOWED_HOSTS)")
        origin = headers.get("origin")
        if origin and method not in SAFE_METHODS and origin.lower() not in self.cors_origins \
                and urlsplit(origin).netloc.lower() != host.lower():
            return 403, (f"requests from the web page at {origin} are not allowed (cross-origin); an admin can allow "
                         "a viewer's origin with --conf cors_origins <origin> (or MONAI_BAC_CORS_ORIGINS)")
        first = path.strip("/").split("/", 1)[0]
        if first in ("model", "logs", "reload") and not self.admin_endpoints:
            if method in ("PUT", "DELETE", "POST") or not self.auth:
                return 403, (f"{method} {path} (model weights, server logs, reload) is disabled on this server. "
                             "With authentication on (MONAI_LABEL_AUTH_ENABLE=true) admins may download weights "
                             "and read logs; `--conf admin_endpoints true` (or MONAI_BAC_ADMIN_ENDPOINTS=true) "
                             "opens them all, including uploading weights")
        if first == "proxy" and not self.dicomweb:
            return 404, "the DICOMweb proxy needs a DICOMweb studies URL; this server serves a local studies folder"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_upload_bytes:
            return 413, (f"request body of {int(length):,} bytes is over the limit of {self.max_upload_bytes:,} "
                         "(--conf max_upload_mb)")
        return None


class RequestGuard:
    """ASGI middleware applying a :class:`ServerPolicy`: refusals as JSON, a body-size cap on streamed
    uploads, and the server's folders replaced by ``<studies>``, ``<bundle>``, ... in every JSON answer."""

    def __init__(self, app, policy: ServerPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from fastapi.responses import JSONResponse
        from starlette.exceptions import HTTPException

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refused = self.policy.refusal(scope, headers)
        if refused:
            status, message = refused
            logger.warning("refused %s %s: %s", scope["method"], scope["path"], message)
            return await JSONResponse({"detail": message}, status_code=status)(scope, receive, send)

        received = 0
        limit = self.policy.max_upload_bytes

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, f"request body is over the limit of {limit:,} bytes (--conf max_upload_mb)")
            return message

        start: dict | None = None
        chunks: list[bytes] = []

        async def scrubbing_send(message):
            nonlocal start
            if message["type"] == "http.response.start":
                kinds = [v for k, v in message.get("headers", []) if k.lower() == b"content-type"]
                if kinds and kinds[0].split(b";")[0].strip() == b"application/json" and scope["method"] != "HEAD":
                    start = message  # held until the whole (small) JSON body is here
                    return
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = self.policy.clean(b"".join(chunks).decode("utf-8", "replace")).encode()
                start["headers"] = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                start["headers"].append((b"content-length", str(len(body)).encode()))
                await send(start)
                return await send({"type": "http.response.body", "body": body})
            await send(message)

        await self.app(scope, limited_receive, scrubbing_send)


class _TrackedTempfile:
    """Stands in for the ``tempfile`` module inside ``monailabel.endpoints.infer``: records the files that
    endpoint makes for THIS request's uploads, so only those (not any ``/tmp/tmp*`` name) are taken as uploads."""

    def __getattr__(self, name):
        return getattr(tempfile, name)

    @staticmethod
    def NamedTemporaryFile(*args, **kwargs):  # noqa: N802 (the tempfile API)
        handle = tempfile.NamedTemporaryFile(*args, **kwargs)
        _UPLOADS.set(_UPLOADS.get() | {os.path.realpath(handle.name)})
        return handle


class _JWTWithAlgorithms:
    """Stands in for ``jwt`` inside ``monailabel.endpoints.user.auth``: MONAI Label 0.8.5 calls ``jwt.decode``
    without ``algorithms``, which PyJWT 2 refuses, so every token was rejected. The realm's public key is
    an asymmetric key; only the asymmetric algorithms named in ``auth_algorithms`` are accepted."""

    def __init__(self, algorithms: tuple[str, ...]):
        self.algorithms = list(algorithms)

    def __getattr__(self, name):
        import jwt

        return getattr(jwt, name)

    def decode(self, token, key=None, *args, **kwargs):
        import jwt

        kwargs["algorithms"] = self.algorithms
        claims = jwt.decode(token, key, *args, **kwargs)  # raises unless the token verifies
        if isinstance(claims, dict):  # who saves a label in this request (lib.annotator)
            note_verified(claims, settings.MONAI_LABEL_AUTH_TOKEN_USERNAME, settings.MONAI_LABEL_AUTH_TOKEN_NAME)
        return claims


def _auth_algorithms(conf: dict) -> tuple[str, ...]:
    names = tuple(a.strip() for a in _setting(conf, "auth_algorithms", "RS256").split(",") if a.strip())
    bad = [a for a in names if a[:2] not in ("RS", "PS", "ES") and a != "EdDSA"]
    if bad or not names:
        raise ValueError(f"auth_algorithms {bad or names}: only asymmetric JWT algorithms (RS*, PS*, ES*, EdDSA) "
                         "verify with the realm's public key")
    return names


def harden_server(policy: ServerPolicy) -> bool:
    """Apply ``policy`` to MONAI Label's FastAPI app of this process; False outside a server process.

    ``monailabel.app`` builds its app (with CORS for every origin when MONAI_LABEL_CORS_ORIGINS is empty)
    at import, before it imports this file, and Starlette builds the middleware stack on the first call
    (the lifespan start-up that creates this app). So the middleware list is rewritten here and the
    stack reset: the next request rebuilds it with the guard, the CORS allow-list and the handlers.
    """
    module = sys.modules.get("monailabel.app")
    api = getattr(module, "app", None)
    if api is None:
        return False
    from fastapi.middleware.cors import CORSMiddleware
    from starlette.middleware import Middleware

    middleware = [m for m in api.user_middleware if m.cls not in (CORSMiddleware, RequestGuard)]
    if policy.cors_origins:
        middleware.insert(0, Middleware(CORSMiddleware, allow_origins=list(policy.cors_origins),
                                        allow_credentials=True, allow_methods=["GET", "HEAD", "POST", "PUT", "DELETE"],
                                        allow_headers=["*"]))
    middleware.insert(0, Middleware(RequestGuard, policy=policy))  # outermost: refusals before CORS answers
    api.user_middleware = middleware
    install_exception_handlers(api, policy.clean)
    api.middleware_stack = None
    infer_endpoint = sys.modules.get("monailabel.endpoints.infer")
    if infer_endpoint is not None:
        infer_endpoint.tempfile = _TrackedTempfile()
    auth = sys.modules.get("monailabel.endpoints.user.auth")
    if policy.auth and auth is not None:
        auth.jwt = _JWTWithAlgorithms(policy.auth_algorithms)
    logger.info("server policy: CORS origins %s; hosts %s; admin endpoints %s; auth %s",
                list(policy.cors_origins) or "none (same origin only)",
                sorted(policy.allowed_hosts) if policy.allowed_hosts is not None else "any",
                policy.admin_endpoints, policy.auth)
    return True


def _die_with_the_server() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the task process gets SIGTERM when the server thread that started it ends."""
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG


class _TaskSubprocess:
    """The ``subprocess`` module as MONAI Label's task runner sees it: its training and scoring
    processes end with the server. (uvicorn re-raises SIGTERM after its shutdown, so no atexit or
    shutdown hook of the app runs; the processes would otherwise outlive it, re-parented to PID 1.)"""

    def __getattr__(self, name: str):
        import subprocess

        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args, **kwargs):  # noqa: N802 - the name monailabel calls
        import subprocess

        if sys.platform.startswith("linux"):
            kwargs.setdefault("preexec_fn", _die_with_the_server)
        return subprocess.Popen(*args, **kwargs)


def tie_task_processes_to_the_server() -> None:
    import monailabel.utils.async_tasks.utils as tasks

    tasks.subprocess = _TaskSubprocess()


class BACApp(MONAILabelApp):
    """Breast arterial calcification (BAC) segmentation on raw mammograms."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]):
        tie_task_processes_to_the_server()
        conf = dict(conf or {})
        names = [n.strip() for n in str(conf.get("models", "bac")).split(",") if n.strip()]
        if "all" in names:
            names = list(CONFIGS)
        unknown = [n for n in names if n not in CONFIGS]
        if unknown or not names:
            raise ValueError(f"unknown model(s) {unknown or names}: choose --conf models with one of {sorted(CONFIGS)}")
        self.models = {}
        for name in names:
            task_config = CONFIGS[name]()
            task_config.init(name, os.path.join(app_dir, "model"), conf, None, studies=studies)
            self.models[name] = task_config
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="monai-bac",
            description="Breast arterial calcification (BAC) segmentation in raw (FOR PROCESSING) mammograms, "
                        "served from the monai-bac bundle",
            version=monai_bac.__version__,
        )
        folders = {"studies": studies, "app": app_dir, **{f"bundle {n}" if len(self.models) > 1 else "bundle":
                                                          c.bundle_path for n, c in self.models.items()}}
        if isinstance(self._datastore, BACDicomWebDatastore):
            folders["dicomweb cache"] = self._datastore.cache_path
        self.policy = ServerPolicy.from_conf(conf, folders, dicomweb=studies.startswith(("http://", "https://")))
        harden_server(self.policy)

    # --- construction -----------------------------------------------------------------------
    def init_datastore(self) -> Datastore:
        if self.studies.startswith(("http://", "https://")):  # a PACS (DICOMweb), see docs/PACS.md
            cache = (settings.MONAI_LABEL_DICOMWEB_CACHE_PATH or "").strip()
            return BACDicomWebDatastore(dicomweb_client(self.studies), settings.MONAI_LABEL_DICOMWEB_SEARCH_FILTER,
                                        cache_path=cache or None,
                                        max_pixels=int(float(_setting(self.conf, "max_pixels", str(MAX_PIXELS)))))
        extensions = [e.strip() for e in self.conf.get("extensions", ",".join(DEFAULT_EXTENSIONS)).split(",")
                      if e.strip()]
        return BACDatastore(
            self.studies,
            images_dir=self.conf.get("images_dir", "."),
            extensions=extensions,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
            allow_delete=_setting(self.conf, "allow_delete", "false").lower() in TRUE,
            max_pixels=int(float(_setting(self.conf, "max_pixels", str(MAX_PIXELS)))),
        )

    def init_infers(self):
        return {name: c.infer() for name, c in self.models.items()}

    def init_trainers(self):
        return {name: c.trainer() for name, c in self.models.items()}

    def init_strategies(self):
        strategies = {"random": RandomUnlabeled()}
        for c in self.models.values():
            strategies.update(c.strategy() or {})
        return strategies

    def init_scoring_methods(self):
        methods = {}
        for c in self.models.values():
            methods.update(c.scoring_method() or {})
        return methods

    def info(self):
        meta = super().info()
        meta["label_colors"] = {k: v for c in self.models.values() for k, v in c.label_colors.items()}
        meta["bundles"] = {name: os.path.basename(c.bundle_path.rstrip(os.sep)) for name, c in self.models.items()}
        meta["third_party_label_tag"] = {name: c.tpa_tag for name, c in self.models.items()}
        return meta

    # --- requests ---------------------------------------------------------------------------
    def _check_model(self, model: Any, tasks: dict, what: str):
        task = tasks.get(model) if isinstance(model, str) else None
        if task is None:
            raise not_found(f"no {what} {model!r}; available: {sorted(tasks)}")
        return task

    @staticmethod
    def _is_upload(path: Any) -> bool:
        """A file MONAI Label's /infer endpoint saved from THIS request's upload (``file=`` / ``label=``)."""
        return isinstance(path, str) and os.path.isabs(path) and os.path.realpath(path) in _UPLOADS.get() \
            and os.path.isfile(path)

    def _max_pixels(self, datastore: Datastore) -> int:
        return getattr(datastore, "max_pixels", MAX_PIXELS)

    def _image_path(self, image: Any, datastore: Datastore) -> tuple[str, str | None]:
        """(file path, datastore id or None) of an /infer request's image, or a 4xx."""
        if self._is_upload(image):
            check_upload(image, "uploaded image", self._max_pixels(datastore))
            return image, None
        if isinstance(datastore, BACDatastore):
            return datastore.require_image(image), image
        image = check_image_id(image)
        path = datastore.get_image_uri(image)
        if not path or not os.path.exists(path):
            raise not_found(f"image {image!r} is not in the datastore")
        return path, image

    def infer(self, request, datastore=None):
        task = self._check_model(request.get("model"), self._infers, "model")
        datastore = datastore or self.datastore()
        path, image_id = self._image_path(request.get("image"), datastore)
        if request.get("label") is not None:
            if not self._is_upload(request["label"]):
                raise bad_request("'label' must be a file uploaded with the request (multipart field 'label')")
            check_upload(request["label"], "uploaded label", self._max_pixels(datastore), expected="a NIfTI label")
        request = copy.deepcopy(request)
        request.update(image=path, image_id=image_id or os.path.basename(path), description=task.description)

        if self._infers_threadpool:
            def run(t, r):
                handle_torch_linalg_multithread(r)
                return t(r)

            future = self._infers_threadpool.submit(run, task, request)
            result_file, result_json = future.result(request.get("timeout", settings.MONAI_LABEL_INFER_TIMEOUT))
        else:
            result_file, result_json = task(request)

        if image_id:
            self._record_prediction_served(datastore, image_id, result_json, request.get("client_id"))
        label_id = result_file
        if image_id and str(request.get("save_label", "false")).lower() in ("1", "true", "yes"):
            tag = request.get("label_tag", DefaultLabelTag.ORIGINAL.value)
            label_id = datastore.save_label(image_id, result_file, tag,
                                            {"model": request.get("model"), "params": result_json})
        if isinstance(result_json, dict):  # no server folder in the answer
            result_json = json.loads(self.policy.clean(json.dumps(result_json, default=str)))
        return {"label": label_id, "tag": DefaultLabelTag.ORIGINAL, "file": result_file, "params": result_json}

    @staticmethod
    def _record_prediction_served(datastore: Datastore, image_id: str, result_json: Any, client_id: Any) -> None:
        """Note in the image's info which model's prediction this client (the verified user, with authentication
        on: :func:`lib.annotator.requester`) was given: the label it submits next is then a correction of it
        (SEMIAUTOMATIC in its DICOM SEG), not a drawing (MANUAL)."""
        model = ((result_json or {}).get("model") or {}).get("id") if isinstance(result_json, dict) else None
        if not model:
            return
        note = {"model": str(model), "version": monai_bac.__version__, "ts": int(time.time())}
        try:  # the datastore merges this client's entry into the image's map (MERGED_INFO_KEYS): the others stay
            datastore.update_image_info(image_id, {PREDICTION_SERVED_KEY: {requester(client_id) or "": note}})
        except Exception as e:  # the prediction is served all the same
            logger.warning("could not note the prediction served for image %r: %s", image_id, e)

    def train(self, request):
        self._check_model(request.get("model"), self._trainers, "trainer for model")
        return super().train(request)

    def next_sample(self, request):
        strategy = request.get("strategy") or "random"
        self._check_model(strategy, self._strategies, "active-learning strategy")
        for draw in range(NEXT_SAMPLE_DRAWS):
            try:
                return super().next_sample(request)
            except NotServed as e:
                if draw == NEXT_SAMPLE_DRAWS - 1:
                    raise
                logger.info("active learning (%s): %s; drawing again", strategy, e.detail)

    def scoring(self, request, datastore=None):
        self._check_model(request.get("method"), self._scoring_methods, "scoring method")
        return super().scoring(request, datastore)

    def batch_infer(self, request, datastore=None):
        self._check_model(request.get("model"), self._infers, "model")
        return super().batch_infer(request, datastore)
