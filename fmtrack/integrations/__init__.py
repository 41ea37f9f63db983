"""Adapters to other libraries' pipelines; each needs its optional extra (e.g. ``fmtrack[supervision]``)."""
