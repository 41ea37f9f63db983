"""The pipeline: one object that does what ``fmtrack run`` does per frame, and the sequence runner
the CLI and the benchmarks share."""

from .defaults import DEFAULT_DESCRIPTOR, DEFAULT_PRESET, default_model_path, preset_descriptor
from .descriptor import (configure, descriptor_label, descriptor_spec, fused_parts, image_embedder, is_model,
                         method_descriptor, resolve_preset, uses_model)
from .sequence import (MethodUnavailable, SequenceInputs, SequenceResult, end_to_end_seconds, map_scores,
                       sequence_inputs, track_sequence)
from .video_tracker import VideoTracker

__all__ = [
    "DEFAULT_DESCRIPTOR", "DEFAULT_PRESET", "MethodUnavailable", "SequenceInputs", "SequenceResult", "VideoTracker",
    "configure", "default_model_path", "descriptor_label", "descriptor_spec", "end_to_end_seconds", "fused_parts",
    "image_embedder", "is_model", "map_scores", "method_descriptor", "preset_descriptor", "resolve_preset",
    "sequence_inputs", "track_sequence", "uses_model",
]
