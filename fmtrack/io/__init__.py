"""MOTChallenge formats and data-root lookup, shared by the CLI, training and benchmarks."""

from .atomic import atomic_path, atomic_write, check_output, remove_stale_temporaries
from .cache import cache_dir, check_cache_entry
from .dataroot import deepsort_features_path, find_sequence, resolve_data_root
from .errors import InputError, InputWarning
from .images import ImageSequence
from .names import check_name
from .motchallenge import (Detections, SequenceInfo, read_detections, read_feature_array,
                           read_ground_truth, read_results, read_seqinfo, write_results)

__all__ = [
    "Detections", "ImageSequence", "InputError", "InputWarning", "SequenceInfo", "atomic_path", "atomic_write",
    "cache_dir", "check_cache_entry", "check_name", "check_output", "remove_stale_temporaries",
    "deepsort_features_path", "find_sequence", "read_detections", "read_feature_array",
    "read_ground_truth", "read_results", "read_seqinfo", "resolve_data_root", "write_results",
]
