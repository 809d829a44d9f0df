"""Small models for CPU (``book``) and their wider variants (``gpu``)."""

from .small import (
    CNNBN,
    MLP,
    BottleneckResNet,
    ResNet,
    cnn_bn,
    mlp,
    mlp_bn,
    num_parameters,
    resnet50,
    resnet56,
    resnet_tiny,
    wrn28_10,
)

__all__ = [
    "MLP",
    "CNNBN",
    "ResNet",
    "BottleneckResNet",
    "mlp",
    "mlp_bn",
    "cnn_bn",
    "resnet_tiny",
    "resnet56",
    "wrn28_10",
    "resnet50",
    "num_parameters",
    "build",
]


def build(name: str, **kwargs):
    """A model by name: ``mlp``, ``mlp_bn``, ``cnn_bn``, ``resnet_tiny``, ``resnet56``, ``wrn28_10`` or
    ``resnet50`` (keyword arguments go to the constructor)."""
    factories = {
        "mlp": mlp,
        "mlp_bn": mlp_bn,
        "cnn_bn": cnn_bn,
        "resnet_tiny": resnet_tiny,
        "resnet56": resnet56,
        "wrn28_10": wrn28_10,
        "resnet50": resnet50,
    }
    if name not in factories:
        raise ValueError(f"unknown model {name!r}; accepted: {', '.join(factories)}")
    return factories[name](**kwargs)
