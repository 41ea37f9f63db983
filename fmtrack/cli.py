"""Command line: parses arguments and calls library functions; no logic lives here."""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import textwrap
import threading
import traceback
import warnings
from pathlib import Path

from .io import InputError, InputWarning, check_output
from .pipeline.defaults import DEFAULT_DESCRIPTOR, DEFAULT_PRESET
# torch-free: the training package loads its torch modules only when they are used.
from .training.config import JACOBIAN_ESTIMATORS, PRECISIONS, TRACKLET_DRAWS, TRACKLET_NEGATIVES
from .training.config import PRESETS as TRAINING_PRESETS
from .training.tracklets import MiningConfig

DEFAULT_EVAL_SEQUENCES = ["MOT17-09-FRCNN", "MOT17-09-SDP"]
DEFAULT_EVAL_METHODS = ["sort@min_confidence=0.3", "deepsort", "motion"]


class _HelpFormatter(argparse.HelpFormatter):
    """Appends each flag's default to its help, unless the help states it already or there is none."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default in (None, False, argparse.SUPPRESS) or "default" in text
                or action.nargs == 0):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"

    def _split_lines(self, text: str, width: int) -> list[str]:
        # Paths and method names hold hyphens: never break a line inside them.
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", help="MOTChallenge data root (else $FMTRACK_DATA, else ../shared/data)")


def _add_ray_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--workers", type=int, default=1,
                        help=f"{what} as Ray tasks on a local Ray instance with this many CPUs (needs fmtrack[ray]; "
                             "default %(default)s: in this process)")
    parser.add_argument("--ray-address", help="join this Ray cluster instead (auto, HOST:6379 or ray://HOST:10001); "
                                              "its nodes need fmtrack and the data root at the same paths")


def _add_mining_options(parser: argparse.ArgumentParser, scope: str) -> None:
    """The label-free tracklet-mining thresholds (defaults from MiningConfig)."""
    parser.add_argument("--min-iou", type=float, default=MiningConfig.min_iou,
                        help=f"{scope}: IoU a tracklet link needs (default %(default)s)")
    parser.add_argument("--max-competitor", type=float, default=MiningConfig.max_competitor,
                        help=f"{scope}: any other overlap this large cuts a link (default %(default)s)")
    parser.add_argument("--min-length", type=int, default=MiningConfig.min_length,
                        help=f"{scope}: shorter tracklets are dropped (detections; default %(default)s)")


def _add_tracker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default=DEFAULT_PRESET, metavar="NAME|FILE.json",
                        help="fmtrack (default): ByteTrack association + appearance + camera motion; "
                             "deepsort / sort / bytetrack reproduce the originals; "
                             "motion: DeepSORT without appearance; "
                             "or a preset file (.json) such as fmtrack tune writes")
    parser.add_argument("--metric", choices=["cosine", "euclidean"],
                        help="appearance distance: 1 - cosine, or true (not squared) Euclidean")
    parser.add_argument("--max-dist", type=float, help="appearance gating threshold (in --metric units)")
    parser.add_argument("--min-confidence", type=float, help="drop detections scoring below this")
    parser.add_argument("--nms", type=float, dest="nms_max_overlap", help="non-maximum suppression as DeepSORT: a detection whose overlap with a higher-scored one (intersection / its own area) exceeds this is dropped (1.0 = off)")
    parser.add_argument("--max-age", type=int, help="frames a lost confirmed track is kept")
    parser.add_argument("--n-init", type=int, help="hits that confirm a track")
    parser.add_argument("--identity-memory", type=int, metavar="FRAMES",
                        help="frames after its last update a deleted track's id can be taken back by a new track "
                             "whose appearance matches it (given for 30 fps where the preset scales max_age; "
                             "0: off; fmtrack: 100)")
    parser.add_argument("--budget", type=int, help="appearance gallery size per track")


def _detector_choices() -> list[str]:
    from .scores import SCORE_MAPS

    return sorted(SCORE_MAPS)


def _tracker_overrides(args: argparse.Namespace) -> dict:
    names = ("metric", "max_dist", "min_confidence", "nms_max_overlap", "max_age", "n_init", "identity_memory", "budget",
             "camera_motion", "score_normalisation")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def cmd_run(args: argparse.Namespace) -> None:
    import time

    from .io import find_sequence, read_seqinfo, write_results
    from .pipeline import (configure, end_to_end_seconds, fused_parts, method_descriptor, sequence_inputs,
                           track_sequence)

    if args.video is not None:
        return _run_video(args)
    if args.fps is not None:
        raise ValueError("--fps applies to --video; a sequence's frame rate is its seqinfo.ini's")
    if len(args.seq) > 1:
        from .benchmarks.methods import make_method

        if args.render:
            raise ValueError("--render draws one sequence; render several with fmtrack render, one at a time")
        return _run_many(args, make_method(args.preset, args.preset, _tracker_overrides(args), args.features,
                                           args.detector))
    start = time.perf_counter()
    sequence_dir = find_sequence(args.seq[0], args.data_root)
    info = read_seqinfo(sequence_dir)
    features = method_descriptor(args.preset, args.features)
    config = configure(args.preset, features, _tracker_overrides(args))
    inputs_read = [args.det, args.features, info.det_path, info.gt_path]
    out = check_output(args.out or f"runs/{config.name}/{info.name}.txt", inputs_read)
    if args.render:
        from .pipeline.video_run import check_render_path

        check_render_path(args.render, [*inputs_read, out])
        if not info.image_dir.is_dir():  # before tracking, not after the results are written
            raise InputError(info.image_dir, f"--render draws on the frames, and {info.name} has none here")
    inputs = sequence_inputs(config, features, info, args.data_root, args.det, not args.quiet, args.detector,
                             args.preset, args.threads)
    detections = inputs.detections
    result = track_sequence(info, detections, config, inputs.embedder, not args.quiet, inputs.camera_motion)
    seconds = time.perf_counter() - start
    write_results(out, result.rows)
    if detections.skipped:
        print(f"fmtrack: warning: skipped {detections.skipped} detections with a width or height below 1e-3 px",
              file=sys.stderr)
    print(f"{info.name}: {len(result.rows)} boxes, {len(set(result.rows[:, 1].tolist()))} tracks -> {out}")
    _print_descriptor(features if inputs.embedder is not None else None, config)
    if inputs.features_path is not None:
        parts = " (a fused descriptor's first part; each part has its own file)" if fused_parts(features) else ""
        print(f"features: {'computed and cached in' if inputs.features_computed else 'read from the cache'} "
              f"{inputs.features_path}{parts} (the cache folder is $FMTRACK_CACHE, else ~/.cache/fmtrack)")
    if inputs.detector is not None:
        how = "--detector" if args.detector else "guessed from the sequence and its scores; --detector chooses"
        print(f"scores: mapped to [0, 1] with the {inputs.detector!r} score map ({how})")
    parts = end_to_end_seconds(result, inputs)
    print(f"time: {seconds:.1f} s, {info.seq_length / max(seconds, 1e-9):.1f} frames/s end to end; embedding "
          f"{parts['embedding']:.1f} s, camera motion {parts['camera_motion']:.1f} s, "
          f"tracking {parts['tracking']:.2f} s "
          f"({info.seq_length / max(parts['tracking'], 1e-9):.0f} frames/s)")
    if args.render:
        from .video import open_frames, render_rows

        render_rows(open_frames(sequence_dir), result.rows, args.render, inputs=[p for p in (*inputs_read, out) if p],
                    progress=not args.quiet)
        print(f"rendered {args.render}")
    if info.gt_path.is_file() and not args.no_score:
        from .benchmarks.evaluate import format_table, score_rows

        print(format_table(score_rows(info, result.rows, config.name, hota=not args.no_hota)).to_string())


def _print_descriptor(features: str | None, config) -> None:
    from .pipeline import default_model_path, descriptor_label, descriptor_spec, uses_model

    if features is not None and config.uses_appearance:
        known = {descriptor_spec("default"): " (the default: the shipped model fused with HSV histograms)",
                 str(default_model_path()): " (the shipped model)"}
        print(f"descriptor: {descriptor_label(features)}{known.get(features, '')}, {config.metric} distance, "
              f"threshold {config.appearance_threshold:.4g}" + (f" ({features})" if uses_model(features) else ""))


def _run_video(args: argparse.Namespace) -> None:
    from .io import write_results
    from .pipeline import configure, method_descriptor
    from .pipeline.video_run import run_video, source_name
    from .video import open_frames

    if args.det is None:
        raise ValueError("--video needs --det: a MOTChallenge det.txt keyed by 1-based frame index")
    if args.workers > 1 or args.ray_address:
        raise ValueError("--workers and --ray-address track several sequences; --video tracks one stream")
    overrides = _tracker_overrides(args)
    name = configure(args.preset, method_descriptor(args.preset, args.features), overrides).name
    out = check_output(args.out or f"runs/{name}/{source_name(open_frames(args.video))}.txt",
                       [args.det, args.features, args.video])
    result = run_video(args.video, args.det, args.preset, args.features, overrides, args.detector, fps=args.fps,
                       threads=args.threads, render=args.render, render_inputs=[args.features, out],
                       progress=not args.quiet)
    write_results(out, result.rows)
    if result.skipped_detections:
        print(f"fmtrack: warning: skipped {result.skipped_detections} detections with zero width or height",
              file=sys.stderr)
    print(f"{result.name}: {len(result.rows)} boxes, {len(set(result.rows[:, 1].tolist()))} tracks -> {out}")
    rate = {"default": " (the source states none; --fps sets it)"}.get(result.fps_source, f" ({result.fps_source})")
    print(f"frames: {result.frames} at {result.fps:g} frames/s{rate}")
    _print_descriptor(result.descriptor, result.config)
    if result.detector is not None:
        how = "--detector" if args.detector else "guessed from the detections' scores; --detector chooses"
        print(f"scores: mapped to [0, 1] with the {result.detector!r} score map ({how})")
    parts = result.timings
    print(f"time: {result.seconds:.1f} s, {result.frames_per_second:.1f} frames/s end to end (decoding"
          f"{' and rendering' if args.render else ''} included); embedding {parts.get('embedding', 0):.1f} s, "
          f"camera motion {parts.get('camera_motion', 0):.1f} s, tracking {parts.get('tracking', 0):.2f} s")
    if args.render:
        print(f"rendered {args.render}")


def cmd_render(args: argparse.Namespace) -> None:
    from .io import find_sequence
    from .video import open_frames, render_results

    source = open_frames(args.video or find_sequence(args.seq, args.data_root))
    out = render_results(source, args.results, args.out, fps=args.fps, progress=not args.quiet)
    print(f"wrote {out}")


def _run_many(args: argparse.Namespace, method) -> None:
    from .scale.videos import track_sequences

    out_dir = Path(args.out or f"runs/{method.config.name}")
    runs = track_sequences(method, args.seq, out_dir, args.data_root, args.det, args.workers, args.ray_address,
                           progress=not args.quiet)
    for run in runs:
        print(f"{run.info.name}: {len(run.rows)} boxes, {len(set(run.rows[:, 1].tolist()))} tracks, "
              f"{run.frames_per_second:.0f} frames/s -> {run.path}")
        if run.skipped_detections:
            print(f"warning: {run.info.name}: skipped {run.skipped_detections} detections with zero width or height",
                  file=sys.stderr)
        if run.info.gt_path.is_file() and not args.no_score:
            from .benchmarks.evaluate import format_table, score_rows

            print(format_table(score_rows(run.info, run.rows, method.label, hota=not args.no_hota)).to_string())


def cmd_eval(args: argparse.Namespace) -> None:
    from .benchmarks.evaluate import format_table, run_methods, score_results_dir, with_ids_ratio, write_tables

    if args.results and (args.workers > 1 or args.ray_address):
        raise ValueError("--workers and --ray-address run methods; --results only scores a folder")
    if args.results:
        evaluation = score_results_dir(args.results, args.seqs, args.data_root, hota=not args.no_hota)
        out_dir = Path(args.out_dir or args.results)
    else:
        out_dir = Path(args.out_dir or "runs/eval")
        sequences = args.seqs or DEFAULT_EVAL_SEQUENCES
        methods = args.methods or DEFAULT_EVAL_METHODS
        if args.workers > 1 or args.ray_address:
            from .scale.videos import run_methods_parallel

            evaluation = run_methods_parallel(methods, sequences, args.data_root, out_dir,
                                              progress=not args.quiet, workers=args.workers,
                                              address=args.ray_address, hota=not args.no_hota)
        else:
            evaluation = run_methods(methods, sequences, args.data_root, out_dir, progress=not args.quiet,
                                     hota=not args.no_hota)
    if args.ids_baseline:
        evaluation.table = with_ids_ratio(evaluation.table, args.ids_baseline)
    csv_path, md_path = write_tables(evaluation, out_dir)
    print(format_table(evaluation.table).to_string())
    for note in evaluation.skipped:
        print(f"skipped: {note}")
    print(f"wrote {csv_path} and {md_path}")


def cmd_tune(args: argparse.Namespace) -> None:
    from .benchmarks.tuning import TuneSettings, tune

    settings = TuneSettings(args.preset, tuple(args.seqs), args.objective, args.trials, args.seed, args.features,
                            args.data_root, tuple(args.frame_rate_steps))
    result = tune(settings, args.out, args.storage, args.study, args.workers, progress=not args.quiet)
    per_sequence = ", ".join(f"{name} {value:.1f}" for name, value in result.per_sequence.items())
    print(f"{result.trials} trials; this run took {result.seconds:.1f} s with {args.workers} worker(s)")
    print(f"best mean {args.objective.upper()} {result.best_value:.2f} ({per_sequence})")
    print(f"parameters: {result.best_parameters}")
    print(f"wrote {result.preset_path} (use: fmtrack run --preset {result.preset_path}), "
          f"{result.plot_path} and {result.trials_path}")


def cmd_eval_descriptor(args: argparse.Namespace) -> None:
    from .benchmarks.descriptor_quality import evaluate_descriptors

    table, _, bootstrap = evaluate_descriptors(args.features, args.seqs, args.out_dir,
                                               None if args.sweep_preset == "none" else args.sweep_preset,
                                               args.data_root, progress=not args.quiet,
                                               bootstrap=args.bootstrap, seed=args.bootstrap_seed)
    print(table.round(3).to_string())
    if bootstrap is not None:
        from .benchmarks.bootstrap import format_bootstrap

        print(format_bootstrap(bootstrap))
    print(f"wrote {args.out_dir}")


def cmd_bench_tracker(args: argparse.Namespace) -> None:
    from .benchmarks.tracker_speed import run_tracker_benchmark

    run_tracker_benchmark(args.seq, args.data_root, args.repeats, args.stream_frames,
                          args.reference_deepsort, args.reference_sort, args.peer_repeats)


def cmd_bench_cmc(args: argparse.Namespace) -> None:
    from .camera_motion import benchmark, benchmark_frames

    benchmark(benchmark_frames(args.frames, args.data_root))


def cmd_bench_streams(args: argparse.Namespace) -> None:
    from .scale.simulation import simulate

    table = simulate(args.streams, args.frames, tuple(args.actors), tuple(args.presets), args.data_root,
                     args.ray_address)
    print(table.round(2).to_string())


def cmd_crops(args: argparse.Namespace) -> None:
    from .training.crops import cut_crops

    mining = MiningConfig(args.min_iou, args.max_competitor, args.min_length)
    out = cut_crops(args.seq, args.out, args.source, args.data_root, args.min_visibility, args.min_confidence,
                    progress=not args.quiet, mining=mining)
    print(f"wrote {out}")


# TrainConfig / ModelConfig fields set by train's flags, so errors name the flag a user typed.
TRAIN_FLAGS = {"eta": "--eta", "steps": "--steps", "jacobian": "--jacobian", "precision": "--precision",
               "device": "--device", "seed": "--seed", "batch_size": "--batch-size", "accumulate": "--accumulate",
               "learning_rate": "--lr",
               "nu": "--nu", "kappa": "--kappa", "beta_init": "--beta-init", "eta_warmup_steps": "--eta-warmup",
               "tracklet_weight": "--tracklet-weight", "tracklet_temperature": "--tracklet-temperature",
               "tracklet_pairs_per_batch": "--tracklet-pairs", "tracklet_min_gap": "--tracklet-min-gap",
               "tracklet_draw": "--tracklet-draw", "tracklet_negatives": "--tracklet-negatives",
               "shift_pixels": "--shift-pixels", "colour_jitter": "--colour-jitter",
               "reconstruction": "--no-reconstruction", "checkpoint_every": "--checkpoint-every",
               "checkpoint_minutes": "--checkpoint-minutes"}
MODEL_FLAGS = {"latent_dim": "--latent-dim", "width": "--width"}


def _flag_names(message: str) -> str:
    """``message`` with config field names replaced by the train flags that set them."""
    import re

    flags = {**TRAIN_FLAGS, **MODEL_FLAGS}
    # Not inside paths or other words: a folder named "eta" stays as it is.
    pattern = r"(?<![\w/.-])(" + "|".join(sorted(flags, key=len, reverse=True)) + r")(?![\w/-])"
    return re.sub(pattern, lambda m: flags[m.group(1)], message)


def cmd_train(args: argparse.Namespace) -> None:
    from .training.distributed import shard_from_environment, train_under_torchrun
    from .training.trainer import (WEIGHTS, TrainingInterrupted, read_checkpoint_state, resumed_configs,
                                   train_processes)

    train_overrides = {field: getattr(args, field, None) for field in TRAIN_FLAGS
                       if getattr(args, field, None) is not None}
    if args.no_reconstruction:
        train_overrides["reconstruction"] = False
    model_overrides = {field: getattr(args, field) for field in MODEL_FLAGS if getattr(args, field) is not None}
    shard = None
    if args.nproc < 1:
        raise ValueError(f"--nproc must be at least 1, got {args.nproc}")
    existing = Path(args.out) / WEIGHTS  # a finished run resumed leaves it as it is
    before = (existing.stat().st_mtime_ns, existing.stat().st_size) if existing.is_file() else None
    try:
        if args.resume:
            train_config, model_config = resumed_configs(read_checkpoint_state(args.out), args.preset,
                                                         train_overrides, model_overrides)
        else:
            chosen = TRAINING_PRESETS[args.preset or "paper"]
            # --from-video trains on mined tracklets, so their term is on unless a weight is given.
            if args.from_video:
                train_overrides.setdefault("tracklet_weight", 1.0)
            train_config = chosen.train.__class__.from_dict({**chosen.train.to_dict(), **train_overrides})
            model_config = chosen.model.__class__.from_dict({**chosen.model.to_dict(), **model_overrides})
        preset = args.preset or (None if args.resume else "paper")
        shard = shard_from_environment()  # set when torchrun started this process
        if shard is not None and args.nproc != 1:
            raise ValueError("under torchrun, --nproc-per-node sets the processes: leave out --nproc")
        if shard is not None:
            weights = train_under_torchrun(shard, lambda: _training_crops(args), train_config=train_config,
                                           model_config=model_config, out_dir=args.out, resume=args.resume,
                                           progress=not args.quiet, overwrite=args.overwrite, preset=preset)
            if weights is None:
                return
        else:
            crops = _training_crops(args)
            weights = train_processes(args.nproc, crops, train_config, model_config, args.out, resume=args.resume,
                                      progress=not args.quiet, overwrite=args.overwrite, preset=preset)
    except TrainingInterrupted as stop:
        if shard is not None and shard.rank != 0:
            raise SystemExit(stop.exit_code) from None
        source = f"--crops {args.crops}" if args.crops else f"--from-video {' '.join(args.from_video)}"
        source += f" --det {args.det}" if args.det else ""
        nproc = f" --nproc {args.nproc}" if args.nproc != 1 else ""
        print(f"fmtrack: {stop}; continue with: fmtrack train {source} --out {args.out} --resume{nproc}",
              file=sys.stderr)
        raise SystemExit(stop.exit_code) from None
    except InputError as err:
        raise InputError(err.path, _flag_names(err.problem), err.line) from None
    except ValueError as err:
        raise ValueError(_flag_names(str(err))) from None
    if (weights.stat().st_mtime_ns, weights.stat().st_size) == before:
        print(f"the run was already finished: {weights} is unchanged")
    else:
        print(f"wrote {weights}")


def _training_crops(args: argparse.Namespace) -> Path:
    """``--crops``, or with ``--from-video`` the mined tracklet crops of those sequences (or of the
    video with ``--det``) in the run folder (reused while mined from the same source: ``run_crops``)."""
    if args.crops:
        if args.det:
            raise ValueError("--det goes with --from-video FILE|DIR; a crops file is already cut")
        return Path(args.crops)
    from .training.crops import cut_crops, cut_video_crops, run_crops

    if args.det and len(args.from_video) != 1:
        raise ValueError(f"--det is the detections of one video; --from-video names {len(args.from_video)}")
    if not args.det:
        for item in args.from_video:
            if os.sep in item or Path(item).suffix or Path(item).is_file():
                raise ValueError(f"--from-video {item}: a video file or folder needs --det det.txt "
                                 "(without it, --from-video takes sequence names)")
    mining = MiningConfig(args.min_iou, args.max_competitor, args.min_length)

    def cut(crops: Path) -> None:
        if args.det:
            from .pipeline.video_run import source_name
            from .video import open_frames

            video = args.from_video[0]
            cut_video_crops(video, args.det, crops, progress=not args.quiet, mining=mining,
                            name=source_name(open_frames(video)))
        else:
            cut_crops(args.from_video, crops, "tracklets", args.data_root, progress=not args.quiet, mining=mining)

    # Sequences by name (the data root may be named another way on resume), a video and its detections by path.
    source = {"from_video": [str(Path(v).resolve()) if args.det else v for v in args.from_video],
              "det": None if args.det is None else str(Path(args.det).resolve()), "mining": dataclasses.asdict(mining)}
    return run_crops(args.out, source, args.resume, args.overwrite, cut)


def cmd_export(args: argparse.Namespace) -> None:
    from .model.weights import export_weights

    check_output(args.out, [args.weights])
    out = export_weights(args.weights, args.out, fp16=not args.fp32, provenance={"exported_from": str(args.weights)})
    print(f"wrote {out} and its sidecar")


def cmd_embed(args: argparse.Namespace) -> None:
    from .embedder import export_features
    from .io import find_sequence, read_detections, read_seqinfo
    from .pipeline import DEFAULT_DESCRIPTOR, descriptor_label, descriptor_spec, image_embedder
    from .pipeline.descriptor import export_thresholds
    from .pipeline.features_sidecar import check_writable, write_sidecar

    info = read_seqinfo(find_sequence(args.seq, args.data_root))
    inputs = [args.det, info.det_path, args.weights]
    check_output(args.out, inputs)
    detections = read_detections(args.det or info.det_path, info.seq_length)
    weights = descriptor_spec(args.weights or DEFAULT_DESCRIPTOR)
    embedder = image_embedder(weights, args.device, precision=args.precision, threads=args.threads)
    if embedder is None:
        raise InputError(None, f"--weights {args.weights}: not a descriptor computed from frames (FMVAE .safetensors, "
                               "model, hsv, or a fused name such as model+hsv*3)")
    check_writable(args.out)  # before the features: the sidecar they need must be writable too
    out = export_features(info, detections, embedder, args.out, inputs, progress=not args.quiet)
    metric, thresholds = export_thresholds(weights)
    sidecar = write_sidecar(out, descriptor_label(weights), metric, thresholds)
    print(f"wrote {out} ({len(detections)} detections x {embedder.dim}, {weights}; features cached as for fmtrack run) "
          f"and {sidecar} (its {metric} metric and thresholds, which run --features reads)")


def cmd_calibrate(args: argparse.Namespace) -> None:
    from .benchmarks.methods import calibrate_descriptor
    from .pipeline import descriptor_spec

    features = descriptor_spec(args.features)
    if args.video and args.seq:
        raise ValueError("--video and --seq name two sources; calibrate on one")
    sequence = None if args.video else args.seq or "MOT16-11"
    calibrations = calibrate_descriptor(features, sequence, tuple(args.metric), args.data_root, args.write,
                                        args.gap, force=args.force, threads=args.threads, progress=not args.quiet,
                                        video=args.video, det=args.det)
    for calibration in calibrations.values():
        print(calibration.to_dict())
    if args.write:
        from .model.weights import sidecar_path

        thresholds = ", ".join(f"{metric} {c.threshold:.4g}" for metric, c in calibrations.items())
        print(f"wrote thresholds ({thresholds}; calibrated on {args.video or sequence}) to {sidecar_path(features)}")


def _at_least_one(text: str) -> int:
    """A count of 1 or more, refused by argparse before any work (not after timing every preset)."""
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {count}")
    return count


def _frame_rate(text: str) -> float:
    """``--fps``: frames per second in (0, 10,000], refused by argparse before any work."""
    from .io.motchallenge import MAX_FRAME_RATE, check_frame_rate

    try:
        return check_frame_rate(float(text), "--fps")
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a frame rate in (0, {MAX_FRAME_RATE:g}] frames per second, "
                                         f"got {text!r}") from None


def _threads(text: str) -> int | None:
    """``--threads``: a count, or 0 for torch's own choice (None)."""
    count = int(text)
    if count < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {count}")
    return count or None


def cmd_diagnose(args: argparse.Namespace) -> None:
    from .training.diagnose import diagnose

    diagnose(args.weights, args.crops, args.out_dir, args.points, progress=not args.quiet)
    print(f"wrote {Path(args.out_dir) / 'flatness.png'}")


def cmd_bench_training(args: argparse.Namespace) -> None:
    from .benchmarks.training_speed import run

    run(full_width=args.full, embedding_only=args.embedding_only)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fmtrack", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="track a sequence or a video and write a MOTChallenge result file")
    what = run.add_mutually_exclusive_group(required=True)
    what.add_argument("--seq", "--seqs", dest="seq", nargs="+",
                      help="sequence name(s), e.g. MOT16-09; with several, --out is a folder")
    what.add_argument("--video", metavar="FILE|DIR",
                      help="a video file, a folder of frames (.jpg/.png in name order) or a sequence folder, "
                           "tracked frame by frame with --det's detections (features and camera motion "
                           "computed from the decoded frames, nothing cached)")
    _add_data_root(run)
    run.add_argument("--det", help="det.txt to use instead of the sequence's own; with --video (required) the "
                                   "MOTChallenge rows keyed by 1-based frame index")
    run.add_argument("--render", metavar="OUT.mp4",
                     help="also write an annotated video (boxes, ids in a stable colour, trails, frame number); "
                          "with --video drawn while tracking, with --seq from the finished rows")
    run.add_argument("--fps", type=_frame_rate,
                     help="with --video: the frame rate (default: the video's or seqinfo.ini's, else 30)")
    run.add_argument("--features", help="appearance: default (model+hsv*3: the shipped model fused with colour "
                                        "histograms), model (the shipped model alone, "
                                        "fmtrack/weights/fmvae-tracklets-strict.safetensors), a trained .safetensors, "
                                        "hsv (colour histograms), image descriptors fused with + (e.g. "
                                        "my.safetensors+hsv: each in units of its own label-free threshold, times "
                                        "its weight), deepsort (DeepSORT's features from the data root), "
                                        "or an N x (7 + D) .npy file whose rows must match the sequence's det.txt (or --det); "
                                        "computed features are cached "
                                        "(default: default; DeepSORT's features for --preset deepsort)")
    run.add_argument("--detector", choices=_detector_choices(),
                     help="the detector that made the scores, choosing its fixed map to [0, 1] "
                          "(default: from the sequence name, else from the scores' range)")
    run.add_argument("--threads", type=_threads, default=1,
                     help="torch CPU threads for a model's embedding (default 1: on a busy CPU more threads "
                          "wait on each other; 0: torch's default)")
    run.add_argument("--score-norm", dest="score_normalisation", choices=["raw", "auto", "minmax", "logistic", "rank"],
                     help="map detector scores to [0, 1]: auto = the --detector map, score by score; "
                          "minmax / logistic / rank over the whole file (default: the preset's)")
    run.add_argument("--cmc", dest="camera_motion", choices=["none", "sof", "ecc"],
                     help="camera-motion compensation, estimated from the frames (cached with --seq; with --video "
                          "computed each run) (default: the preset's)")
    _add_tracker_options(run)
    run.add_argument("--out", help="result file (default runs/PRESET/SEQ.txt, with --video runs/PRESET/STEM.txt); "
                                   "with several sequences, their folder (default runs/PRESET)")
    _add_ray_options(run, "with several sequences: track them")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--no-score", action="store_true", help="do not score against the sequence's gt")
    run.add_argument("--no-hota", action="store_true", help="score without TrackEval's HOTA, DetA, AssA columns")
    run.set_defaults(func=cmd_run)

    rd = sub.add_parser("render", help="draw a MOTChallenge result file onto a sequence's or a video's frames (mp4)")
    frames = rd.add_mutually_exclusive_group(required=True)
    frames.add_argument("--seq", help="sequence name, e.g. MOT16-09 (its frames and frame rate)")
    frames.add_argument("--video", help="a video file, an image folder (frames in name order) or a sequence folder")
    rd.add_argument("--results", required=True, help="result file: frame,id,left,top,width,height,...")
    rd.add_argument("--out", required=True, help="annotated video (.mp4), written atomically")
    rd.add_argument("--fps", type=_frame_rate, help="output frame rate (default: the source's, else 30)")
    _add_data_root(rd)
    rd.add_argument("--quiet", action="store_true", help="no progress bar")
    rd.set_defaults(func=cmd_render)

    ev = sub.add_parser("eval", help="run methods over sequences, or score a results folder")
    ev.add_argument("--methods", nargs="+",
                    help="PRESET[@key=value,...], e.g. sort@min_confidence=0.3 deepsort@max_dist=0.2 "
                         f"(default: {' '.join(DEFAULT_EVAL_METHODS)}; not with --results)")
    ev.add_argument("--seqs", nargs="+", help="sequences (default with --methods: "
                    f"{' '.join(DEFAULT_EVAL_SEQUENCES)}; with --results: every SEQ.txt in the folder)")
    ev.add_argument("--results", help="score the SEQ.txt files in this folder instead of running methods")
    _add_data_root(ev)
    ev.add_argument("--out-dir", help="where result files and summary.csv/.md go (default runs/eval; with "
                                      "--results, that folder)")
    ev.add_argument("--ids-baseline", help="a method label: add the column 'IDs ratio' = its IDs / each row's IDs")
    ev.add_argument("--no-hota", action="store_true",
                    help="skip TrackEval's HOTA, DetA, AssA columns (they add about half to the scoring time)")
    _add_ray_options(ev, "run the (method x sequence) cells")
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=cmd_eval)

    tu = sub.add_parser("tune", help="search a preset's parameters on sequences (Optuna TPE) and write a preset file")
    from .tracker.search_spaces import SEARCH_SPACES

    tu.add_argument("--preset", default="bytetrack", choices=sorted(SEARCH_SPACES),
                    help="preset whose declared search space (fmtrack/tracker/search_spaces.py) is searched "
                         "(default %(default)s)")
    tu.add_argument("--seqs", nargs="+", required=True, help="sequences whose mean score is maximised")
    tu.add_argument("--objective", choices=["idf1", "hota"], default="idf1",
                    help="mean IDF1 (py-motmetrics) or mean HOTA (TrackEval) (default %(default)s)")
    tu.add_argument("--trials", type=int, default=50,
                    help="trials in the study in total; a rerun on the same storage continues up to this "
                         "(default %(default)s)")
    tu.add_argument("--workers", type=int, default=1, help="worker processes sharing the study (default %(default)s)")
    tu.add_argument("--seed", type=int, default=0,
                    help="TPE sampler seed; worker i uses seed + i (default %(default)s)")
    tu.add_argument("--features", help="appearance presets: as fmtrack run --features (e.g. deepsort)")
    tu.add_argument("--frame-rate-steps", nargs="+", type=int, default=[1], metavar="STEP",
                    help="also score every sequence at 1/STEP of its frame rate (every STEP-th frame; "
                         "e.g. 1 2 3 4), so the result holds for slower cameras (default: 1, as filmed)")
    tu.add_argument("--out", required=True, help="the best configuration as a preset file (.json); "
                                                  "OUT-history.png and OUT-trials.csv go beside it")
    tu.add_argument("--storage", help="Optuna storage: a journal file, or an RDB URL (sqlite:///x.db, "
                                      "postgresql://...) for workers on several machines (default: OUT.journal)")
    tu.add_argument("--study", help="study name in the storage (default PRESET-OBJECTIVE)")
    _add_data_root(tu)
    tu.add_argument("--quiet", action="store_true", help="no progress bar")
    tu.set_defaults(func=cmd_tune)

    ed = sub.add_parser("eval-descriptor", help="descriptor AUC and rank-1 against gt identities; IDF1 vs threshold")
    ed.add_argument("--features", nargs="+", default=[DEFAULT_DESCRIPTOR],
                    help="default (model+hsv*3), model (the shipped model), deepsort, hsv, FMVAE .safetensors, "
                         "fused names (A+B*W), or N x (7 + D) .npy files")
    ed.add_argument("--seqs", nargs="+", default=DEFAULT_EVAL_SEQUENCES, help="sequences with gt to evaluate on")
    ed.add_argument("--sweep-preset", default="deepsort",
                    help="tracker preset of the IDF1-vs-threshold sweep ('none': no sweep)")
    ed.add_argument("--out-dir", default="runs/descriptors", help="where the tables and plots go")
    ed.add_argument("--bootstrap", type=int, default=0, metavar="B",
                    help="B paired-bootstrap resamples over identities of the Euclidean AUCs and their "
                         "differences per sequence, written to OUT_DIR/bootstrap.csv (0: off; 200 is typical)")
    ed.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap resamples")
    _add_data_root(ed)
    ed.add_argument("--quiet", action="store_true", help="no progress bars")
    ed.set_defaults(func=cmd_eval_descriptor)

    bench = sub.add_parser("bench", help="print speed benchmarks")
    bench_sub = bench.add_subparsers(dest="target", required=True)
    bt = bench_sub.add_parser("tracker", help="update() frames/s per preset, and memory on a long stream")
    bt.add_argument("--seq", default="MOT17-09-FRCNN", help="sequence whose detections are tracked (it needs "
                                                            "DeepSORT's features in the data root, for the fmtrack preset)")
    _add_data_root(bt)
    bt.add_argument("--repeats", type=_at_least_one, default=3, help="timed passes per preset (the best is reported)")
    bt.add_argument("--stream-frames", type=int, default=100_000, help="synthetic frames for the memory check")
    bt.add_argument("--reference-deepsort", help="checkout of nwojke/deep_sort to time in the same run")
    bt.add_argument("--reference-sort", help="checkout of abewley/sort (needs filterpy) to time in the same run")
    bt.add_argument("--peer-repeats", type=_at_least_one, default=5,
                    help="passes per tracker when timing against trackers' ByteTrackTracker (installed with "
                         "the [peers] extra; skipped otherwise)")
    bt.set_defaults(func=cmd_bench_tracker)
    bc = bench_sub.add_parser("cmc", help="camera-motion estimation frames/s on 1920x1080 frames")
    bc.add_argument("--frames", type=int, default=60, help="consecutive frames to time (MOT16-11's, else synthetic)")
    _add_data_root(bc)
    bc.set_defaults(func=cmd_bench_cmc)
    bs = bench_sub.add_parser("streams", help="synthetic live streams on Ray actors: frames/s and latency "
                                             "percentiles per number of actors (needs fmtrack[ray])")
    bs.add_argument("--streams", type=int, default=16, help="concurrent streams (default %(default)s)")
    bs.add_argument("--frames", type=int, default=300, help="timed frames per stream (default %(default)s)")
    bs.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="actor counts to time (default 1 2)")
    bs.add_argument("--presets", nargs="+", default=["bytetrack", "deepsort"],
                    help="tracker presets; appearance presets replay DeepSORT's features (default: bytetrack deepsort)")
    bs.add_argument("--ray-address", help="join this Ray cluster instead of starting a local instance")
    _add_data_root(bs)
    bs.set_defaults(func=cmd_bench_streams)
    btr = bench_sub.add_parser("training", help="training crops/s per Jacobian estimator, embedding crops/s "
                                                "(shipped model: 1/2 threads, with and without a busy CPU)")
    btr.add_argument("--full", action="store_true", help="also the full-width model (slow on CPU)")
    btr.add_argument("--embedding-only", action="store_true",
                     help="only the shipped model's embedding crops/s (1 and 2 threads, with and without "
                          "a busy loop per core)")
    btr.set_defaults(func=cmd_bench_training)

    crops = sub.add_parser("crops", help="cut 64x64 training crops from sequences into one file")
    crops.add_argument("--seq", nargs="+", required=True, help="sequences to cut crops from")
    crops.add_argument("--source", choices=["gt", "det", "tracklets"], default="det",
                       help="det: detections, label-free (default); gt: annotated pedestrians; tracklets: "
                            "detections with label-free mined tracklet ids (for --tracklet-weight)")
    crops.add_argument("--min-visibility", type=float, default=0.5, help="gt source only")
    crops.add_argument("--min-confidence", type=float, default=0.3, help="det and tracklets sources only")
    _add_mining_options(crops, "tracklets source")
    crops.add_argument("--out", required=True, help="crops file (.npz)")
    _add_data_root(crops)
    crops.add_argument("--quiet", action="store_true", help="no progress bars")
    crops.set_defaults(func=cmd_crops)

    tr = sub.add_parser("train", help="train the flat-manifold VAE on a crops file (resumable)")
    source = tr.add_mutually_exclusive_group(required=True)
    source.add_argument("--crops", help="a crops file from fmtrack crops")
    source.add_argument("--from-video", nargs="+", metavar="SEQ|FILE|DIR",
                        help="mine label-free tracklets from these sequences' detections, or with --det from one "
                             "video file or frames folder, and train with the tracklet term (weight 1 unless "
                             "--tracklet-weight says otherwise); the crops go to OUT/tracklet-crops.npz")
    tr.add_argument("--det", help="with --from-video FILE|DIR: its MOTChallenge det.txt (rows keyed by 1-based "
                                  "frame index)")
    _add_mining_options(tr, "--from-video")
    tr.add_argument("--out", required=True, help="run folder: checkpoints, log, weights")
    tr.add_argument("--preset", choices=list(TRAINING_PRESETS),
                    help="paper: full-width VGG16 (default); cpu: quarter width, bf16; tiny: tests. "
                         "With --resume: the checkpoint's configuration")
    tr.add_argument("--eta", type=float, help="flatness weight (0: VHP-VAE; paper: 300, 3000)")
    tr.add_argument("--steps", type=int, help="optimiser steps (default: the --preset's)")
    tr.add_argument("--batch-size", type=int, help="crops per step (default: the --preset's)")
    tr.add_argument("--accumulate", type=int,
                    help="compute each step's batch as this many micro-batches (CPU; default 1): the same "
                         "computation as this many times the --nproc processes, each with the micro-batch")
    tr.add_argument("--lr", type=float, dest="learning_rate", help="Adam learning rate (default: the --preset's)")
    tr.add_argument("--kappa", type=float, help="reconstruction constraint: RMS error in pixel standard deviations")
    tr.add_argument("--nu", type=float, help="beta update rate")
    tr.add_argument("--beta-init", type=float, help="initial KL weight beta (default: the --preset's)")
    tr.add_argument("--eta-warmup", type=int, dest="eta_warmup_steps",
                    help="steps over which eta ramps up after the initial phase")
    tr.add_argument("--tracklet-weight", type=float,
                    help="weight of the InfoNCE tracklet term (0: off; needs a 'tracklets' crops file)")
    tr.add_argument("--tracklet-temperature", type=float, help="InfoNCE temperature, squared latent units")
    tr.add_argument("--tracklet-pairs", type=int, dest="tracklet_pairs_per_batch", help="tracklets per step (two crops each)")
    tr.add_argument("--tracklet-min-gap", type=int, help="frames between a positive pair's crops")
    tr.add_argument("--tracklet-draw", choices=TRACKLET_DRAWS,
                    help="draw a step's tracklets in groups that share a frame (default) or uniformly")
    tr.add_argument("--tracklet-negatives", choices=TRACKLET_NEGATIVES,
                    help="negatives: every other tracklet of the batch (default) or only those sharing a frame")
    tr.add_argument("--shift-pixels", type=int, help="augmentation: random translation up to this many pixels")
    tr.add_argument("--colour-jitter", type=float,
                    help="augmentation: random per-channel gain in 1 +- this (off by default)")
    tr.add_argument("--no-reconstruction", action="store_true",
                    help="the tracklet term alone: no reconstruction, KL or flatness (ablation)")
    tr.add_argument("--jacobian", choices=JACOBIAN_ESTIMATORS,
                    help="estimator of the decoder Jacobian in the flatness term (default: the --preset's)")
    tr.add_argument("--precision", choices=PRECISIONS,
                    help="autocast dtype (auto: bf16 on CUDA and AMX CPUs, else fp32; default: the --preset's)")
    tr.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    tr.add_argument("--seed", type=int, help="random seed (default: the --preset's)")
    tr.add_argument("--latent-dim", type=int, help="latent size D, the descriptor length (default: the --preset's)")
    tr.add_argument("--width", type=float, help="channel multiplier of encoder and decoder")
    tr.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default: the --preset's)")
    tr.add_argument("--checkpoint-minutes", type=float,
                    help="most wall-time minutes between checkpoints (default: the --preset's)")
    tr.add_argument("--resume", action="store_true",
                    help="continue from the run folder's last checkpoint, with its configuration (flags "
                         "given must agree with it, but --steps and the checkpoint flags)")
    tr.add_argument("--overwrite", action="store_true", help="start over in a folder that holds a run")
    tr.add_argument("--nproc", type=int, default=1,
                    help="training processes on this machine (DistributedDataParallel: gloo on CPU, nccl on "
                         "GPUs); --batch-size is per process, --resume needs the same number. Several "
                         "machines: torchrun --nproc-per-node N ... -m fmtrack.cli train ... without --nproc")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_root(tr)
    tr.set_defaults(func=cmd_train)

    ex = sub.add_parser("export", help="copy trained weights and their sidecar for shipping (fp16 by default)")
    ex.add_argument("--weights", required=True, help="a run's weights.safetensors")
    ex.add_argument("--out", required=True, help="e.g. weights/fmvae-eta300.safetensors")
    ex.add_argument("--fp32", action="store_true", help="keep fp32 tensors")
    ex.set_defaults(func=cmd_export)

    em = sub.add_parser("embed", help="embed a sequence's detections into an N x (7 + D) .npy")
    em.add_argument("--seq", required=True, help="sequence name, e.g. MOT16-11")
    em.add_argument("--det", help="det.txt (default: the sequence's own)")
    em.add_argument("--weights", help="FMVAE .safetensors, model (the shipped model), hsv, or a fused name such as "
                                      "model+hsv*3 (default: default, which is model+hsv*3)")
    em.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (FMVAE weights only)")
    em.add_argument("--precision", choices=PRECISIONS, default="fp32",
                    help="autocast dtype (auto: bf16 on CUDA and AMX CPUs, else fp32; FMVAE weights only)")
    em.add_argument("--threads", type=_threads, default=1,
                    help="torch threads for the model (default 1: on a busy CPU more threads wait on each other; "
                         "0: torch's default)")
    em.add_argument("--out", required=True, help="the N x (7 + D) array, written to exactly this path "
                                                 "(features are also cached, as fmtrack run does)")
    _add_data_root(em)
    em.add_argument("--quiet", action="store_true", help="no progress bar")
    em.set_defaults(func=cmd_embed)

    ca = sub.add_parser("calibrate", help="label-free appearance threshold on a (training) sequence")
    ca.add_argument("--seq", help="a training sequence (never an evaluation one) (default: MOT16-11)")
    ca.add_argument("--video", help="instead of --seq: a video file or frame folder to calibrate on (your own "
                                    "footage, with --det)")
    ca.add_argument("--det", help="with --video: its MOTChallenge det.txt (rows keyed by 1-based frame)")
    ca.add_argument("--features", required=True,
                    help="hsv, model (the shipped model), default (model+hsv*3), an FMVAE .safetensors, or a fused "
                         "name A+B*W (--write: .safetensors only)")
    ca.add_argument("--metric", nargs="+", choices=["euclidean", "cosine"], default=["euclidean", "cosine"],
                    help="distances to calibrate")
    ca.add_argument("--write", action="store_true", help="store the threshold in the weights' JSON sidecar")
    ca.add_argument("--force", action="store_true", help="with --write: replace a calibration made on another sequence")
    ca.add_argument("--threads", type=_threads, default=1, help="torch threads for an FMVAE model (0: torch's default)")
    ca.add_argument("--gap", type=_at_least_one, default=15, help="frames between the two ends of a 'same' pair")
    ca.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_root(ca)
    ca.set_defaults(func=cmd_calibrate)

    dg = sub.add_parser("diagnose", help="flatness of trained models: table and box plots")
    dg.add_argument("--weights", nargs="+", required=True, help="FMVAE .safetensors files to compare")
    dg.add_argument("--crops", required=True, help="a crops file (.npz) whose crops are encoded")
    dg.add_argument("--points", type=_at_least_one, default=50,
                    help="encodings and mixup points per model, at most 1000 (exact G: ~0.9 s a point at full "
                         "width on 2 CPU cores)")
    dg.add_argument("--out-dir", default="runs/diagnose", help="where the table and flatness.png go")
    dg.add_argument("--quiet", action="store_true", help="no progress bar")
    dg.set_defaults(func=cmd_diagnose)
    _set_formatter(parser)
    return parser


def _set_formatter(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = _HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _set_formatter(child)


def _check_combinations(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Flags that would be silently ignored together are an error instead."""
    if args.command == "eval" and args.results and args.methods is not None:
        parser.error("eval: --results scores existing result files, so --methods would be ignored; give one of them")
    if args.command == "train" and args.resume and args.overwrite:
        parser.error("train: --resume continues the run in --out and --overwrite starts it over; give one of them")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, InputWarning):
        print(f"fmtrack: warning: {message}", file=sys.stderr)
    else:
        print(f"fmtrack: warning: {category.__name__}: {message}", file=sys.stderr)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _error_line(err: BaseException) -> tuple[str, int]:
    """One line for an exception at the CLI boundary, and the exit status (2: bad input or
    environment, 1: an unexpected error)."""
    hint = "" if os.environ.get("FMTRACK_DEBUG") else " (run with FMTRACK_DEBUG=1 for the traceback)"
    if isinstance(err, ValueError):  # InputError included: already ``file:line: problem``
        return str(err).splitlines()[0] if str(err) else type(err).__name__, 2
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror or _first_line(err)}{hint}", 2
    if isinstance(err, MemoryError):  # numpy's _ArrayMemoryError says how much it wanted
        return f"out of memory: {_first_line(err)}{hint}", 2
    if isinstance(err, OverflowError):
        return f"a value is out of range: {_first_line(err)}{hint}", 2
    return f"unexpected {type(err).__name__}: {_first_line(err)}{hint}", 1


class _Terminated(BaseException):
    """SIGTERM (a job scheduler, ``kill``), raised where the process is so that, as for Ctrl-C, every
    atomic write in progress removes its temporary file instead of leaving it behind."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_combinations(parser, args)
    previous = warnings.showwarning
    warnings.showwarning = _show_warning
    # Only the main thread may set a handler (main() called from another thread keeps the default).
    in_main = threading.current_thread() is threading.main_thread()
    previous_sigterm = signal.signal(signal.SIGTERM, _terminate) if in_main else None
    try:
        args.func(args)
    except (KeyboardInterrupt, _Terminated) as stop:
        what = "interrupted" if isinstance(stop, KeyboardInterrupt) else "terminated"
        note = " (the run keeps its last checkpoint; --resume continues from it)" if args.command == "train" else \
            " (nothing half-written is left)"
        print(f"fmtrack: {what}{note}", file=sys.stderr)
        return 130 if isinstance(stop, KeyboardInterrupt) else 143
    except Exception as err:  # the CLI's promise: one line, never a traceback unless asked for
        message, status = _error_line(err)
        if os.environ.get("FMTRACK_DEBUG"):
            traceback.print_exc()
        print(f"fmtrack: error: {message}", file=sys.stderr)
        return status
    finally:
        warnings.showwarning = previous
        if in_main:
            signal.signal(signal.SIGTERM, previous_sigterm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
