"""The training recipe lives in the bundle's configs: literals in train.json, profiles by override file."""

from __future__ import annotations

import json

import pytest
import torch
from monai.bundle import ConfigParser

from conftest import BUNDLE
from monai_bac.bundle_support import training_recipe

#: the CPU profile as it was before the recipe moved into train.json (bundle_support.PROFILES["cpu"])
CPU = dict(image_size=384, num_epochs=30, batch_size=2, cohort_size=40, phantom_spacing_mm=0.2, crop_to_breast=True,
           train_patch_size=192, num_workers=0, cache_rate=1.0, learning_rate=1e-3)
#: the paper's recipe (Sec. 3.2, 4.3): 1600 px, up to 100 epochs, batch 3, Adam 1e-4
GPU = dict(image_size=1600, num_epochs=100, batch_size=3, cohort_size=240, phantom_spacing_mm=0.1,
           crop_to_breast=False, train_patch_size=None, num_workers=4, cache_rate=1.0, learning_rate=1e-4)


def _settings(*files: str) -> dict:
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / f) for f in files])
    return {k: parser.get_parsed_content(k) for k in CPU}


def test_the_hyper_parameters_are_literals_in_train_json():
    profiles = json.loads((BUNDLE / "configs" / "train.json").read_text())["profiles"]
    assert profiles["cpu"] == CPU and profiles["gpu"] == GPU
    assert training_recipe(BUNDLE / "configs" / "train.json", "gpu") == GPU


@pytest.mark.parametrize("override, expected", [("cpu.json", CPU), ("gpu.json", GPU)])
def test_an_override_file_selects_a_profile(override, expected):
    assert _settings("train.json", override) == expected


def test_the_default_picks_the_cpu_profile_without_cuda():
    expected = GPU if torch.cuda.is_available() else CPU
    assert _settings("train.json") == expected


def test_an_unknown_profile_is_named():
    with pytest.raises(ValueError, match="no profile 'tpu'"):
        training_recipe(BUNDLE / "configs" / "train.json", "tpu")
