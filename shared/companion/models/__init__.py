"""Small models for CPU (``book``) and their wider variants (``gpu``)."""

from .small import CNNBN, MLP, cnn_bn, mlp, mlp_bn, num_parameters

__all__ = ["MLP", "CNNBN", "mlp", "mlp_bn", "cnn_bn", "num_parameters", "build"]


def build(name: str, **kwargs):
    """A model by name: ``mlp``, ``mlp_bn`` or ``cnn_bn`` (keyword arguments go to the constructor)."""
    factories = {"mlp": mlp, "mlp_bn": mlp_bn, "cnn_bn": cnn_bn}
    if name not in factories:
        raise ValueError(f"unknown model {name!r}; accepted: {', '.join(factories)}")
    return factories[name](**kwargs)
