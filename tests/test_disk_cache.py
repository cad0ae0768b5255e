"""The disk cache of SpekPy's spectra: read back bit for bit, keyed by the set-up, and never in the
way (a corrupt or foreign file, an unwritable folder, the cache switched off)."""

from __future__ import annotations

import numpy as np
import pytest

from monai_bac import physics
from monai_bac.disk_cache import CACHE_ENV, cache_dir, load_arrays, store_arrays


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A private cache folder and an empty in-process cache (tube_spectrum's lru_cache)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    physics.tube_spectrum.cache_clear()
    yield tmp_path / "cache"
    physics.tube_spectrum.cache_clear()


def _no_spekpy(*args, **kwargs):
    raise AssertionError("SpekPy was asked although the spectrum is on disk")


def test_spectrum_is_read_back_from_disk_bit_for_bit(fresh, monkeypatch):
    first = physics.tube_spectrum(28.0, "TUNGSTEN", "RHODIUM")
    files = sorted(fresh.glob("spectrum-*.npz"))
    assert len(files) == 1 and not list(fresh.glob(".*"))  # no temporary file left behind
    physics.tube_spectrum.cache_clear()
    monkeypatch.setattr(physics, "_spek", _no_spekpy)
    again = physics.tube_spectrum(28.0, "TUNGSTEN", "RHODIUM")
    assert np.array_equal(again.energy_kev, first.energy_kev) and np.array_equal(again.fluence, first.fluence)
    assert again.mean_energy_kev == first.mean_energy_kev
    # another set-up is another entry: SpekPy is asked for it
    with pytest.raises(AssertionError, match="SpekPy was asked"):
        physics.tube_spectrum(29.0, "TUNGSTEN", "RHODIUM")


def test_corrupt_or_foreign_entries_are_misses_and_rewritten(fresh, monkeypatch):
    reference = physics.tube_spectrum(26.0, "MOLYBDENUM", "MOLYBDENUM")
    (path,) = fresh.glob("spectrum-*.npz")
    path.write_bytes(b"not a numpy file")
    physics.tube_spectrum.cache_clear()
    again = physics.tube_spectrum(26.0, "MOLYBDENUM", "MOLYBDENUM")  # recomputed, file replaced
    assert np.array_equal(again.fluence, reference.fluence)
    with np.load(path, allow_pickle=False) as z:
        assert "Mo" in str(z["key"]) or "MOLYBDENUM" in str(z["key"])
    # a file whose stored key is another one (a hash collision, a hand-made file) is not used
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: np.array(z[k]) for k in z.files}
    arrays["key"] = np.array('{"kind": "spectrum", "kvp": 99}')
    arrays["per_kev"] = arrays["per_kev"] * 2.0
    np.savez(path, **arrays)
    physics.tube_spectrum.cache_clear()
    again = physics.tube_spectrum(26.0, "MOLYBDENUM", "MOLYBDENUM")
    assert np.array_equal(again.fluence, reference.fluence)


def test_cache_off_and_unwritable_folder_do_not_fail(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, "")
    assert cache_dir() is None
    assert store_arrays("spectrum", {"a": 1}, {"x": np.arange(3)}) is None
    assert load_arrays("spectrum", {"a": 1}, ("x",)) is None
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))  # its parent is a file: cannot be created
    assert store_arrays("spectrum", {"a": 1}, {"x": np.arange(3)}) is None
    physics.tube_spectrum.cache_clear()
    try:
        spec = physics.tube_spectrum(30.0, "TUNGSTEN", "SILVER")
    finally:
        physics.tube_spectrum.cache_clear()
    assert spec.fluence.size > 10 and blocker.read_text() == "in the way"
    # a folder that may not be searched (chmod cannot show it to root): Path.is_file raises
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "locked"))

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(tmp_path), "is_file", denied)
    assert load_arrays("spectrum", {"a": 1}, ("x",)) is None


def test_default_folder_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "monai-bac"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "monai-bac"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"
    path = store_arrays("demo", {"n": 2}, {"x": np.arange(4.0)})
    assert path is not None and path.parent == tmp_path / "mine"
    got = load_arrays("demo", {"n": 2}, ("x",))
    assert got is not None and np.array_equal(got["x"], np.arange(4.0))
    assert load_arrays("demo", {"n": 3}, ("x",)) is None
