"""``fmtrack tune``: Optuna's TPE search of a preset's declared parameters over a set of sequences.

A trial sets the parameters of ``fmtrack.tracker.search_spaces.SEARCH_SPACES[preset]``, tracks every
sequence and scores it (mean IDF1 by py-motmetrics, or mean HOTA by TrackEval, both in percent), and
the study maximises that mean. Trials share one Optuna storage: a journal file by default, or an RDB
URL (``sqlite:///x.db``, ``postgresql://...``) so that workers on several machines can join the same
study. ``workers`` processes each run ``study.optimize`` on their share of the trials; a worker loads
each sequence's inputs (detections, features, camera motion) once, so a trial costs tracking and
scoring only. ``frame_rate_steps`` adds each sequence at 1/step of its frame rate as a cell of its
own (``NAME@1/STEP``; fmtrack.benchmarks.frame_rate). With one worker a seed gives the same trials
every time; with several, each worker's sampler is seeded ``seed + worker`` and the order in which
trials finish depends on timing.

A rerun on the same storage and study continues it up to ``trials`` in total. The best configuration
is written atomically as a preset file (fmtrack.pipeline.preset_file), with the optimisation-history
plot (``*-history.png``) and every trial (``*-trials.csv``) beside it.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import sys
import textwrap
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..io import (InputError, InputWarning, atomic_path, atomic_write, cache_dir, find_sequence, read_ground_truth,
                  read_seqinfo, resolve_data_root)
from ..pipeline import MethodUnavailable, track_sequence
from ..tracker import TrackerConfig
from ..pipeline.defaults import descriptor_name
from ..pipeline.preset_file import preset_document
from ..tracker.search_spaces import SEARCH_SPACES, Space, apply_parameters, check_space, get_parameter
from .evaluate import results_frame
from .frame_rate import subsample_sequence
from .hota import evaluate_sequence, hota_row
from .methods import load_inputs, make_method
from .scoring import accumulate, protocol_for

Objective = Literal["idf1", "hota"]
INSTALL_HINT = "fmtrack tune needs Optuna: pip install 'fmtrack[tune]' (optuna==5.0.0)"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise InputError(None, INSTALL_HINT) from None
    return optuna


@dataclass(frozen=True)
class TuneSettings:
    """What a tuning run searches. ``features``: as ``fmtrack run --features`` (appearance presets)."""

    preset: str
    sequences: tuple[str, ...]
    objective: Objective = "idf1"
    trials: int = 50
    seed: int = 0
    features: str | None = None
    data_root: str | None = None
    # Score every sequence also at 1/step of its frame rate (fmtrack.benchmarks.frame_rate): settings
    # that hold across rates, for cameras slower than the tuning sequences. (1,): as filmed only.
    frame_rate_steps: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        if self.preset not in SEARCH_SPACES:
            raise ValueError(f"preset {self.preset!r} has no declared search space "
                             f"(fmtrack.tracker.search_spaces: {', '.join(SEARCH_SPACES)})")
        if self.objective not in ("idf1", "hota"):
            raise ValueError(f"objective {self.objective!r}: idf1 or hota")
        if self.trials < 1 or not self.sequences:
            raise ValueError("tuning needs at least one trial and one sequence")
        steps = self.frame_rate_steps
        if (not steps or len(set(steps)) != len(steps)
                or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in steps)):
            raise ValueError(f"frame_rate_steps must be distinct integers >= 1 (1: as filmed), got {steps!r}")

    @property
    def study_attributes(self) -> dict[str, Any]:
        """What a study in shared storage must agree on before a worker joins it."""
        wanted = {"preset": self.preset, "sequences": list(self.sequences), "objective": self.objective,
                  "features": self.features, "seed": self.seed}
        if self.frame_rate_steps != (1,):  # studies made before the option agree on the rest alone
            wanted["frame_rate_steps"] = list(self.frame_rate_steps)
        return wanted

    def cells(self) -> list[tuple[str, str, int]]:
        """(label, sequence, step) of every scored cell: ``NAME``, or ``NAME@1/STEP`` below its rate."""
        return [(name if step == 1 else f"{name}@1/{step}", name, step)
                for step in self.frame_rate_steps for name in self.sequences]


@dataclass(frozen=True)
class TuneResult:
    config: TrackerConfig
    best_value: float
    best_parameters: dict[str, Any]
    per_sequence: dict[str, float]
    trials: int
    seconds: float
    preset_path: Path
    plot_path: Path
    trials_path: Path


class TrialObjective:
    """Tracks and scores the sequences for one parameter setting; inputs loaded once per process."""

    def __init__(self, settings: TuneSettings):
        self.settings = settings
        self.method = make_method(settings.preset, settings.preset, {}, settings.features)
        default = make_method(settings.preset, settings.preset, {}, None)
        self.space: Space = SEARCH_SPACES[settings.preset]
        check_space(self.method.config, self.space)
        # (label, info, inputs, gt, the descriptor's own configuration where it is not self.method's)
        self.sequences: list[tuple[str, Any, Any, Any, TrackerConfig | None]] = []
        for label, name, step in settings.cells():
            root = settings.data_root if step == 1 else _lower_rate_root(name, step, settings.data_root)
            info = read_seqinfo(find_sequence(name, root))
            try:
                inputs, own = load_inputs(self.method, info, root, progress=False), None
            except MethodUnavailable as error:
                # As fmtrack run without these features: the preset's default descriptor (on motion
                # alone where the sequence has no frames).
                warnings.warn(InputWarning(f"{error}: {label} is tuned with the default descriptor "
                                           f"({default.features or 'none'})"))
                inputs, own = load_inputs(default, info, root, progress=False), default.config
            gt = read_ground_truth(info.gt_path, info.seq_length)
            self.sequences.append((label, info, inputs, gt, own))

    def score(self, config: TrackerConfig) -> dict[str, float]:
        """{cell label (``TuneSettings.cells``): IDF1 or HOTA in percent} for one configuration
        (appearance thresholds in the units of ``settings.features``; carried to another descriptor by
        their threshold factors)."""
        scores = {}
        for label, info, inputs, gt, own in self.sequences:
            config_here = config
            if own is not None and config.uses_appearance and own.uses_appearance:
                config_here = config.replace(metric=own.metric).with_max_distance(own.appearance_threshold)
            rows = track_sequence(info, inputs.detections, config_here, inputs.embedder, False,
                                  inputs.camera_motion).rows
            if self.settings.objective == "hota":
                scores[label] = hota_row(evaluate_sequence(info, rows, protocol_for(info)))["HOTA"]
            else:
                accumulator = accumulate(gt, results_frame(rows), info, protocol_for(info))
                scores[label] = 100.0 * _idf1(accumulator)
        return scores

    def __call__(self, trial) -> float:
        scores = self.score(apply_parameters(self.method.config, trial_parameters(trial, self.method.config,
                                                                                  self.space)))
        trial.set_user_attr("per_sequence", scores)
        return float(np.mean(list(scores.values())))


def _lower_rate_root(name: str, step: int, data_root: str | None) -> str:
    """A data root holding ``name`` at 1/``step`` of its frame rate, rebuilt from the data root each
    time (cheap: frames are links), in the cache, one folder per data root."""
    source = resolve_data_root(data_root).resolve()
    root = cache_dir("frame-rate") / hashlib.sha256(str(source).encode()).hexdigest()[:12] / f"step{step}"
    subsample_sequence(name, step, root, source)
    return str(root)


def trial_parameters(trial, config: TrackerConfig, space: Space) -> dict[str, Any]:
    """A trial's values, named as in the search space (a ``scale`` becomes the preset's value times the
    drawn factor)."""
    values = {}
    for name, (kind, low, high) in space.items():
        if kind == "int":
            values[name] = trial.suggest_int(name, int(low), int(high))
        elif kind == "float":
            values[name] = trial.suggest_float(name, low, high)
        elif kind == "bool":
            values[name] = trial.suggest_categorical(name, [False, True])
        else:
            values[name] = get_parameter(config, name) * trial.suggest_float(name, low, high, log=True)
    return values


def _idf1(accumulator) -> float:
    from .motmetrics_compat import motmetrics as mm

    value = float(mm.metrics.create().compute(accumulator, metrics=["idf1"])["idf1"].iloc[0])
    return 0.0 if math.isnan(value) else value


def _storage(storage: str):
    """An RDB URL as it is, else a journal file (Optuna's file lock lets processes share it)."""
    optuna = _optuna()
    if "://" in storage:
        return storage
    _check_journal(Path(storage))
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(storage)))


def _check_journal(path: Path) -> None:
    """InputError unless ``path`` is absent, empty or an Optuna journal (its first line a JSON operation):
    Optuna's journal writer appends its first operation to any file before it reads it as a journal."""
    if not path.exists():
        return
    if not path.is_file():
        raise InputError(path, "--storage: not a journal file (a folder or device)")
    try:
        with open(path, encoding="utf8") as fh:
            first = fh.readline()
        if first and "op_code" not in json.loads(first):
            raise ValueError("no op_code")
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        raise InputError(path, "--storage: exists and is not an Optuna journal; give a new file or the journal "
                               "of an earlier tune") from None


def _open_study(settings: TuneSettings, storage: str, study_name: str, worker: int = 0):
    optuna = _optuna()
    sampler = optuna.samplers.TPESampler(seed=settings.seed + worker)
    try:
        study = optuna.create_study(study_name=study_name, storage=_storage(storage), sampler=sampler,
                                    direction="maximize", load_if_exists=True)
    except Exception as err:  # noqa: BLE001 - SQLAlchemy, drivers and the journal reader raise their own kinds
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise InputError(storage, f"--storage: not an Optuna journal file or RDB URL this machine can open "
                                  f"({type(err).__name__}: {first})") from None
    wanted = settings.study_attributes
    if not study.user_attrs:
        for key, value in wanted.items():
            study.set_user_attr(key, value)
    elif {key: study.user_attrs.get(key) for key in wanted} != wanted:
        raise InputError(storage, f"study {study_name!r} there was made with {study.user_attrs}; "
                                  f"this run asks for {wanted}: give another --study or --storage")
    return study


def _finished(study) -> int:
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def _worker(settings: TuneSettings, storage: str, study_name: str, trials: int, worker: int) -> None:
    """One worker process: its own inputs, sampler and share of the trials, on the shared study."""
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = _open_study(settings, storage, study_name, worker)
        study.optimize(TrialObjective(settings), n_trials=trials)
    except ValueError as err:  # bad input (InputError included): one line, as the CLI prints it
        print(f"fmtrack tune worker {worker}: error: {err}", file=sys.stderr)
        sys.exit(2)


def _shares(total: int, workers: int) -> list[int]:
    """``total`` trials split as evenly as possible over ``workers`` (none empty)."""
    workers = max(1, min(workers, total))
    return [total // workers + (i < total % workers) for i in range(workers)]


def _run_workers(settings: TuneSettings, storage: str, study_name: str, remaining: int, workers: int,
                 progress: bool) -> None:
    from tqdm import tqdm

    optuna = _optuna()
    study = optuna.load_study(study_name=study_name, storage=_storage(storage))
    start = _finished(study)
    bar = tqdm(total=start + remaining, initial=start, desc="trials", unit="trial", disable=not progress)
    if workers == 1:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = _open_study(settings, storage, study_name)
        study.optimize(TrialObjective(settings), n_trials=remaining, callbacks=[lambda *_: bar.update()])
        bar.close()
        return
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked locks or threads
    processes = [context.Process(target=_worker, args=(settings, storage, study_name, share, i), daemon=True)
                 for i, share in enumerate(_shares(remaining, workers))]
    for process in processes:
        process.start()
    try:
        while any(p.is_alive() for p in processes):
            time.sleep(0.5)
            bar.n = _finished(study)
            bar.refresh()
    finally:
        for process in processes:  # only still alive when interrupted
            if process.is_alive():
                process.terminate()
            process.join()
        bar.n = _finished(study)
        bar.close()
    failed = [i for i, p in enumerate(processes) if p.exitcode != 0]
    if failed:
        raise InputError(storage, f"tuning worker(s) {failed} failed (their errors are printed above)")


def tune(settings: TuneSettings, out: str | Path, storage: str | None = None, study_name: str | None = None,
         workers: int = 1, progress: bool = True) -> TuneResult:
    """Run (or continue) the study up to ``settings.trials`` trials, then write the best configuration.

    out: the preset file (.json). storage: a journal file path or an RDB URL (default ``out`` with
    suffix ``.journal``). study_name: default ``<preset>-<objective>``.
    """
    out = Path(out)
    if out.suffix.lower() != ".json":
        raise InputError(out, "the tuned preset is written as JSON: give a .json --out")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = str(storage or out.with_suffix(".journal"))
    study_name = study_name or f"{settings.preset}-{settings.objective}"
    base = make_method(settings.preset, settings.preset, {}, settings.features).config
    space = SEARCH_SPACES[settings.preset]
    check_space(base, space)
    study = _open_study(settings, storage, study_name)
    remaining = settings.trials - _finished(study)
    start = time.perf_counter()
    if remaining > 0:
        _run_workers(settings, storage, study_name, remaining, workers, progress)
    seconds = time.perf_counter() - start
    study = optuna.load_study(study_name=study_name, storage=_storage(storage))
    best = study.best_trial
    values = trial_parameters(optuna.trial.FixedTrial(best.params), base, space)
    config = apply_parameters(base, values)
    provenance = {
        **settings.study_attributes, "descriptor": descriptor_name(settings.features, settings.preset),
        "trials": _finished(study), "best_value": best.value,
        "best_trial": best.number, "per_sequence": best.user_attrs.get("per_sequence", {}),
        "parameters": values, "search_space": {k: list(v) for k, v in space.items()},
        "study": study_name, "storage": storage, "sampler": "TPESampler",
    }
    with atomic_write(out) as fh:
        json.dump(preset_document(config, provenance), fh, indent=2)
    plot_path = out.with_name(out.stem + "-history.png")
    rates = "" if settings.frame_rate_steps == (1,) else \
        f" at {', '.join(f'1/{k}' for k in settings.frame_rate_steps)} of their frame rates"
    _plot_history(study, plot_path, f"{settings.preset}: mean {settings.objective.upper()} (%) on "
                                    f"{', '.join(settings.sequences)}{rates}")
    trials_path = out.with_name(out.stem + "-trials.csv")
    with atomic_write(trials_path) as fh:
        study.trials_dataframe().to_csv(fh, index=False)
    return TuneResult(config, float(best.value), values, provenance["per_sequence"], provenance["trials"],
                      seconds, out, plot_path, trials_path)


def _plot_history(study, path: Path, label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import warnings

    from optuna.visualization.matplotlib import plot_optimization_history

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        axes = plot_optimization_history(study)
    axes.set_ylabel("\n".join(textwrap.wrap(label, 50)))  # a long list of sequences stays on the figure
    with atomic_path(path) as tmp:
        axes.figure.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(axes.figure)
