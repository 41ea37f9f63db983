"""fmtrack: multi-object tracking of people with a label-free flat-manifold VAE descriptor."""

__version__ = "0.1.0"
