"""Selection-level leave-one-sequence-out over a finished `fmtrack tune` study: for each held-out
sequence, the trial with the best mean IDF1 over the others, and its IDF1 on the held-out one.

Usage: python benchmarks/tuning_loo.py OUT.journal STUDY (e.g. bytetrack-idf1). The search itself saw
every sequence, so this bounds the selection's over-fitting, not the search's."""
import sys
import warnings

import numpy as np
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

warnings.filterwarnings("ignore")
optuna.logging.set_verbosity(optuna.logging.WARNING)
journal, study_name = sys.argv[1], sys.argv[2]
study = optuna.load_study(study_name=study_name, storage=JournalStorage(JournalFileBackend(journal)))
trials = [t for t in study.trials if t.value is not None and "per_sequence" in t.user_attrs]
seqs = list(trials[0].user_attrs["per_sequence"])
table = np.array([[t.user_attrs["per_sequence"][s] for s in seqs] for t in trials])
print(f"{len(trials)} trials; best trial #{study.best_trial.number} mean {study.best_value:.2f}")
print(f"{'held out':16s} {'trial':>5s} {'held-out IDF1':>13s}")
held = []
for j, s in enumerate(seqs):
    others = np.delete(table, j, axis=1).mean(axis=1)
    pick = int(np.argmax(others))
    held.append(table[pick, j])
    print(f"{s:16s} {trials[pick].number:5d} {table[pick, j]:13.2f}")
print(f"mean held-out IDF1 {np.mean(held):.2f}; best trial's in-sample mean {study.best_value:.2f}")
