"""MONAI Label's datastore index (``datastore_v2.json``) as a file that several processes write.

The server and the scoring and training tasks it starts in the background (MONAI Label's task runner:
separate processes) each hold the index in memory and write the whole of it back after every change.
monailabel 0.8.5's :class:`~monailabel.datastore.local.LocalDatastore` reloads it only when its file
watcher reports a change whose float ``st_mtime`` differs from the last one it read, and writes
its own copy without reloading first. So:

* the server answers from a stale copy until the watcher's event comes (seen: ``GET /datastore``
  right after a background scoring reported DONE lacked the score of the last images it wrote), and
  never when the watcher is off (the PACS datastore's cache, ``auto_reload`` false);
* a change made by one process while another holds an older copy is lost at the other's next write:
  an active-learning request during a background scoring drops the scores written so far, or the
  scoring drops the "served" marks that keep two annotators off the same image.

:class:`SharedIndexDatastore` reloads the index when its file changed (inode, size and mtime in
nanoseconds) before it answers, and makes each info update a read-modify-write under MONAI Label's
own lock file (``.lock`` beside the index), so changes from different processes add up: an info
update, an image added, a label saved. Some info values are maps that each writer reads, adds its own
entry to and writes back whole (MONAI Label's ``strategy``: one entry per active-learning strategy); an
update merges such a map into the one on disk (:attr:`SharedIndexDatastore.merged_info_keys`), so two
writers at once each keep their entry.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from typing import Any

from filelock import FileLock
from monailabel.datastore.local import DataModel, ImageLabelModel, LocalDatastore, LocalDatastoreModel
from monailabel.interfaces.exception import ImageNotFoundException, LabelNotFoundException

logger = logging.getLogger(__name__)


class SharedIndexDatastore(LocalDatastore):
    """A :class:`LocalDatastore` whose index stays coherent when other processes write it."""

    #: (inode, mtime in ns, size) of the index file when this process last read or wrote it
    _index_seen: tuple[int, int, int] | None = None
    #: image-info keys whose value maps a writer's name to its entry, merged entry by entry on update:
    #: MONAI Label's active-learning endpoint reads ``strategy``, sets its strategy's entry and writes the
    #: map back, so a plain update would drop an entry another request set in between
    merged_info_keys: tuple[str, ...] = ("strategy",)

    @property
    def _index_lock(self) -> FileLock:
        """MONAI Label's lock file, as one lock object per datastore: re-entrant within a thread (a second
        ``FileLock`` on the same file, as LocalDatastore makes for each use, would wait for the first)."""
        lock = self.__dict__.get("_index_filelock")
        if lock is None:
            lock = self.__dict__["_index_filelock"] = FileLock(self._lock_file)
        return lock

    def _index_signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self._datastore_config_path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _init_from_datastore_file(self, throw_exception=False):
        """Read the index file if it changed since this process last read or wrote it."""
        with self._index_lock:
            signature = self._index_signature()
            if signature is None or signature == self._index_seen:
                return
            try:
                with open(self._datastore_config_path) as fp:
                    model = LocalDatastoreModel.model_validate_json(fp.read())
            except ValueError as e:
                logger.error("datastore index %s unreadable: %s", self._datastore_config_path, e)
                if throw_exception:
                    raise
                return
            model.base_path = self._datastore_path
            self._datastore = model
            self._config_ts = os.stat(self._datastore_config_path).st_mtime
            self._index_seen = signature

    def _update_datastore_file(self, lock=True):
        if not lock:  # the caller holds the lock (LocalDatastore's methods: a lock object of their own)
            super()._update_datastore_file(lock=False)
            self._index_seen = self._index_signature()
            return
        with self._index_lock:
            super()._update_datastore_file(lock=False)
            self._index_seen = self._index_signature()

    def _reconcile_datastore(self):
        with self._index_lock:  # read the index, match it to the files, write it: one step
            super()._reconcile_datastore()

    def sync_index(self) -> None:
        """Take in what other processes wrote to the index since this one last read or wrote it."""
        if self._index_signature() != self._index_seen:
            self._init_from_datastore_file()

    # --- reads answer from the index as it is on disk ---------------------------------------
    def get_image_info(self, image_id: str) -> dict[str, Any]:
        self.sync_index()
        return super().get_image_info(image_id)

    def get_label_info(self, label_id: str, label_tag: str) -> dict[str, Any]:
        self.sync_index()
        return super().get_label_info(label_id, label_tag)

    def list_images(self) -> list[str]:
        self.sync_index()
        return super().list_images()

    def get_labeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        self.sync_index()
        return super().get_labeled_images(label_tag, labels)

    def get_unlabeled_images(self, label_tag: str | None = None, labels: list[str] | None = None) -> list[str]:
        self.sync_index()
        return super().get_unlabeled_images(label_tag, labels)

    def json(self):
        self.sync_index()
        return super().json()

    # --- changes: read, change and write under the lock -------------------------------------
    def update_image_info(self, image_id: str, info: dict[str, Any]) -> None:
        with self._index_lock:
            self._init_from_datastore_file()
            obj = self._datastore.objects.get(image_id)
            if not obj:
                raise ImageNotFoundException(f"Image {image_id} not found")
            current = obj.image.info
            for key, value in info.items():
                if key in self.merged_info_keys and isinstance(value, dict) and isinstance(current.get(key), dict):
                    value = {**current[key], **value}
                current[key] = value
            self._update_datastore_file()

    def update_label_info(self, label_id: str, label_tag: str, info: dict[str, Any]) -> None:
        with self._index_lock:
            self._init_from_datastore_file()
            label = self._datastore.label(label_id, label_tag)
            if not label:
                raise LabelNotFoundException(f"Label: {label_id} Tag: {label_tag} not found")
            label.info.update(info)
            self._update_datastore_file()

    # LocalDatastore's add_image and save_label take a lock object of their own, inside which this one cannot
    # read the index again; the same steps (copy the file, note it in the index), read-modify-write
    def add_image(self, image_id: str, image_filename: str, image_info: dict[str, Any]) -> str:
        name_id, ext = self._to_id(os.path.basename(image_filename))
        image_id = image_id or name_id
        name = self._filename(image_id, ext)
        logger.info("adding image %s <= %s", image_id, image_filename)
        with self._index_lock:
            self._init_from_datastore_file()
            shutil.copy(image_filename, os.path.realpath(os.path.join(self._datastore.image_path(), name)))
            info = {**(image_info or {}), "ts": int(time.time()), "name": name}
            self._datastore.objects[image_id] = ImageLabelModel(image=DataModel(info=info, ext=ext))
            self._update_datastore_file()
        return image_id

    def save_label(self, image_id: str, label_filename: str, label_tag: str, label_info: dict[str, Any]) -> str:
        _, ext = self._to_id(os.path.basename(label_filename))
        label_dir = self._datastore.label_path(label_tag)
        name = self._filename(image_id, ext)
        logger.info("saving label %s of image %s <= %s", label_tag, image_id, label_filename)
        with self._index_lock:
            self._init_from_datastore_file()
            obj = self._datastore.objects.get(image_id)
            if not obj:
                raise ImageNotFoundException(f"Image {image_id} not found")
            os.makedirs(label_dir, exist_ok=True)
            shutil.copy(label_filename, os.path.join(label_dir, name))
            info = {**(label_info or {}), "ts": int(time.time()), "name": name}
            obj.labels[label_tag] = DataModel(info=info, ext=ext)
            self._update_datastore_file()
        return image_id
