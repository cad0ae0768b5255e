"""The paper's segmentation networks (Table 2), built with segmentation-models-pytorch.

=================  ==========  =====================  ==============
name               model       encoder                parameters (M)
=================  ==========  =====================  ==============
``unet_r34``       Unet        ResNet34               24.43
``deeplabv3p_r34`` DeepLabV3+  ResNet34               22.43
``deeplabv3p_mnv3`` DeepLabV3+ MobileNetV3-Large 100  4.70
=================  ==========  =====================  ==============

Counts are for one input channel (the normalised raw mammogram) and one output channel (BAC
logit). No weights are downloaded: ``encoder_weights=None`` is the default, and a local
checkpoint can be loaded with ``weights_path``.
"""

from __future__ import annotations

import os

import segmentation_models_pytorch as smp
import torch

__all__ = ["NETWORKS", "build_network", "count_parameters", "input_multiple"]

#: name -> (smp architecture, encoder, input side must be a multiple of)
NETWORKS = {
    "unet_r34": ("Unet", "resnet34", 32),
    "deeplabv3p_r34": ("DeepLabV3Plus", "resnet34", 16),
    "deeplabv3p_mnv3": ("DeepLabV3Plus", "tu-mobilenetv3_large_100", 16),
}


def build_network(
    name: str = "deeplabv3p_mnv3",
    in_channels: int = 1,
    out_channels: int = 1,
    encoder_weights: str | None = None,
    weights_path: str | os.PathLike | None = None,
) -> torch.nn.Module:
    """A network of Table 2 returning logits of shape (B, out_channels, H, W).

    Args:
        name: one of ``unet_r34``, ``deeplabv3p_r34``, ``deeplabv3p_mnv3``.
        encoder_weights: smp pretrained-encoder name (e.g. "imagenet"); None (default) keeps
            the network offline. Downloading weights needs a network connection.
        weights_path: a local state dict (or a checkpoint dict with a "model" / "network"
            entry) to load into the whole network.
    """
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose one of {sorted(NETWORKS)}")
    arch, encoder, _ = NETWORKS[name]
    net = getattr(smp, arch)(encoder_name=encoder, encoder_weights=encoder_weights, in_channels=in_channels,
                             classes=out_channels, activation=None)
    if weights_path is not None:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        for key in ("model", "network", "state_dict"):
            if isinstance(state, dict) and key in state and isinstance(state[key], dict):
                state = state[key]
        net.load_state_dict(state)
    return net


def input_multiple(name: str) -> int:
    """The input height and width must be multiples of this for ``name``."""
    return NETWORKS[name][2]


def count_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
