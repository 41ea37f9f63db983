"""Tracklet self-supervision: mining, purity, the InfoNCE term, and training with it (resumable)."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, safe_open, save_file

from fmtrack.io import Detections, InputError, InputWarning, find_sequence, read_detections, read_ground_truth
from fmtrack.model.weights import read_weights_info
from fmtrack.training.config import PRESETS, TrainConfig
from fmtrack.model.normalise import normalise_crops
from fmtrack.training.crops import cut_crops, load_crops, save_crops, synthetic_crops
from fmtrack.model.network import FMVAE
from fmtrack.training.objective import (flatness, importance_weighted_kl, mixup_points, objective,
                                        reconstruction_error, tracklet_infonce)
from fmtrack.benchmarks.tracklet_purity import tracklet_purity
from fmtrack.training.tracklets import MiningConfig, mine_tracklets
from fmtrack.training.trainer import CHECKPOINT, Trainer, tracklet_groups

from resume_check import assert_resume_is_bit_identical

TINY = PRESETS["tiny"]
SIZE = (40.0, 100.0)   # walker box width, height in pixels
SPEED = 5.0            # pixels per frame: IoU 35/45 = 0.78 between a walker's consecutive boxes


def walker_stream() -> tuple[Detections, np.ndarray]:
    """Detections of five walkers with their identities (N,).

    0 and 1 cross: they walk toward each other on one line and coincide at frame 61.
    2 and 3 walk side by side 28 px apart (IoU 12/68 = 0.18 between them, 0.27 at most between
    one's box and the other's next box). 4 is seen for 5 frames only, fewer than min_length.
    """
    frames, boxes, identity = [], [], []
    def walk(person: int, span: range, x0: float, y: float, speed: float) -> None:
        for i, frame in enumerate(span):
            frames.append(frame)
            boxes.append([x0 + speed * i, y, *SIZE])
            identity.append(person)
    walk(0, range(1, 121), 0.0, 0.0, SPEED)
    walk(1, range(1, 121), 600.0, 0.0, -SPEED)
    walk(2, range(1, 41), 0.0, 400.0, SPEED)
    walk(3, range(1, 41), 28.0, 400.0, SPEED)
    walk(4, range(50, 55), 0.0, 800.0, SPEED)
    order = np.argsort(frames, kind="stable")
    detections = Detections(np.asarray(frames), np.asarray(boxes), np.ones(len(frames)))
    return detections, np.asarray(identity)[order]


def test_miner_makes_no_false_link_and_cuts_crossing_walkers():
    detections, identity = walker_stream()
    ids = mine_tracklets(detections)
    for tracklet in np.unique(ids[ids >= 0]):
        assert len(np.unique(identity[ids == tracklet])) == 1, "a tracklet joins two people"
    crossing = 61
    for person in (0, 1):
        rows = identity == person
        tracklets = np.unique(ids[rows & (ids >= 0)])
        for tracklet in tracklets:
            frames = detections.frames[ids == tracklet]
            assert frames.max() < crossing or frames.min() > crossing, "a tracklet runs through the crossing"
        # Cut at the crossing, not everywhere: a long tracklet on each side.
        spans = [np.ptp(detections.frames[ids == t]) for t in tracklets]
        assert len(tracklets) == 2 and min(spans) >= 40
    for person in (2, 3):  # close but never ambiguous: one tracklet over all 40 frames
        assert (ids[identity == person] == ids[identity == person][0]).all() and ids[identity == person][0] >= 0
    assert (ids[identity == 4] == -1).all()
    # Ids are consecutive, in order of each tracklet's first row.
    firsts = [np.flatnonzero(ids == t)[0] for t in range(ids.max() + 1)]
    assert firsts == sorted(firsts)


def test_miner_cuts_at_a_missing_frame_and_at_a_competitor():
    detections, identity = walker_stream()
    keep = ~((identity == 2) & (detections.frames == 20))
    gap = Detections(detections.frames[keep], detections.boxes[keep], detections.scores[keep])
    ids = mine_tracklets(gap)
    assert len(np.unique(ids[identity[keep] == 2])) == 2
    # A lower competitor threshold sees the side-by-side walkers (IoU 0.18 to 0.27) as doubt.
    strict = mine_tracklets(detections, MiningConfig(max_competitor=0.15))
    assert (strict[(identity == 2) | (identity == 3)] == -1).all()
    with pytest.raises(ValueError):
        MiningConfig(min_iou=0.3, max_competitor=0.5)


def write_gt(path, rows):
    path.write_text("".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return read_ground_truth(path)


def test_purity_matches_the_closed_form(tmp_path):
    """Two people (x = 0 and x = 200) over frames 1-6 and a detection at x = 400 in frame 6 that
    matches no considered gt box (the one there has consider flag 0). Tracklets by hand:
    0: person 1 in frames 1-3, then person 2 in frames 4-6 (5 links, one impure);
    1: person 2 in frames 1-3 (2 pure links);
    2: person 1 in frames 4-5, then the unmatched detection (1 pure link, 1 link not counted).
    Link purity 7/8; 3 tracklets, all matched, 2 of them pure."""
    w, h = 50, 100
    gt_rows = [(f, person, x, 0, w, h, 1, 1, 1.0) for f in range(1, 7) for person, x in ((1, 0), (2, 200))]
    gt = write_gt(tmp_path / "gt.txt", gt_rows + [(6, 9, 400, 0, w, h, 0, 8, 1.0)])
    frames, boxes, tracklet = [], [], []
    for f in range(1, 7):
        for x, t in ((0, 0 if f <= 3 else (2 if f <= 5 else -1)), (200, 1 if f <= 3 else 0)):
            frames.append(f); boxes.append([x + 1.0, 0, w, h]); tracklet.append(t)
    frames.append(6); boxes.append([400.0, 0, w, h]); tracklet.append(2)
    detections = Detections(np.asarray(frames), np.asarray(boxes), np.ones(len(frames)))
    order = np.argsort(frames, kind="stable")
    purity = tracklet_purity(detections, np.asarray(tracklet)[order], gt)
    assert purity.links == 8 and purity.link_purity == pytest.approx(7 / 8)
    assert purity.tracklets == 3 and purity.matched_tracklets == 3 and purity.pure_share == pytest.approx(2 / 3)


def test_mot16_11_dpm_tracklets_are_pure(data_root):
    info = find_sequence("MOT16-11", data_root)
    detections = read_detections(info / "det" / "det.txt")
    keep = detections.scores >= 0.0
    detections = Detections(detections.frames[keep], detections.boxes[keep], detections.scores[keep])
    ids = mine_tracklets(detections)
    purity = tracklet_purity(detections, ids, read_ground_truth(info / "gt" / "gt.txt"))
    assert purity.tracklets == 106  # the reference README probe's count
    assert purity.link_purity > 0.99 and purity.links > 1000


def test_infonce_step_pulls_positives_together_and_pushes_negatives_apart():
    """Two tracklets whose crops of one moment lie close together (like two people in one frame)
    while each tracklet's two crops lie far apart: one gradient step on the free latents brings
    both positive pairs closer and moves both close negative pairs apart."""
    first = torch.tensor([[0.0, 0.0], [0.1, 1.0]], requires_grad=True)    # tracklets 0 and 1, moment a
    second = torch.tensor([[2.0, 0.1], [2.0, 1.2]], requires_grad=True)   # the same two, moment b
    def squared_distances():
        points = torch.cat([first, second]).detach()
        return torch.cdist(points, points).pow(2)
    before = squared_distances()
    tracklet_infonce(first, second, 1.0).backward()
    with torch.no_grad():
        for latent in (first, second):
            latent -= 0.05 * latent.grad
    after = squared_distances()
    positives, close_negatives = [(0, 2), (1, 3)], [(0, 1), (2, 3)]
    assert all(after[i, j] < before[i, j] for i, j in positives)
    assert all(after[i, j] > before[i, j] for i, j in close_negatives)


def test_infonce_closed_form_values():
    same = torch.zeros(3, 2)
    assert tracklet_infonce(same, same, 1.0).item() == pytest.approx(math.log(5))  # 2P - 1 equal logits
    far = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    assert tracklet_infonce(far, far, 1.0).item() < 1e-30


def test_zero_tracklet_weight_is_the_vae_objective_exactly():
    """weight 0 (other tracklet settings changed, tracklet crops given): the loss is beta*F + C +
    beta*eta*R recomputed by hand from the same random draws, and the tracklet term is NaN."""
    torch.manual_seed(0)
    model = FMVAE(TINY.model)
    images = normalise_crops(synthetic_crops(8).images, [0.5] * 3, [0.25] * 3)
    config = dataclasses.replace(TINY.train, tracklet_weight=0.0, tracklet_temperature=0.1,
                                 tracklet_pairs_per_batch=2, tracklet_min_gap=0)
    beta = 1e-2
    torch.manual_seed(1)
    terms = objective(model, images, beta, config, tracklet_images=images[:4])
    torch.manual_seed(1)
    mean, logvar = model.encode(images)
    latents = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
    recon = reconstruction_error(images, model.decode(latents)).mean()
    kl = importance_weighted_kl(latents, mean, logvar, model.prior, config.importance_samples).mean()
    flat, _ = flatness(model.decode, mixup_points(latents, config.mixup_extrapolation)[: config.regulariser_points],
                       config)
    assert terms.loss.item() == (beta * kl + recon + beta * config.eta * flat).item()
    assert math.isnan(terms.tracklet.item())


def test_tracklet_term_adds_its_weighted_infonce_and_can_train_alone():
    torch.manual_seed(0)
    model = FMVAE(TINY.model)
    images = normalise_crops(synthetic_crops(8).images, [0.5] * 3, [0.25] * 3)
    pairs = normalise_crops(synthetic_crops(6, seed=3).images, [0.5] * 3, [0.25] * 3)
    alone = dataclasses.replace(TINY.train, tracklet_weight=2.0, reconstruction=False)
    terms = objective(model, None, 1e-2, alone, tracklet_images=pairs)
    first, second = model.encode(pairs)[0].chunk(2)
    assert terms.loss.item() == pytest.approx(2.0 * tracklet_infonce(first, second, 1.0).item())
    assert math.isnan(terms.reconstruction_error.item()) and math.isnan(terms.kl_bound.item())
    with pytest.raises(ValueError, match="tracklet_images"):
        objective(model, images, 1e-2, alone)
    with pytest.raises(ValueError, match="reconstruction=False"):
        dataclasses.replace(TINY.train, reconstruction=False)


def tracklet_crops(count=48, per_tracklet=6, spacing=10):
    """Synthetic crops labelled as count / per_tracklet tracklets, frames ``spacing`` apart, and the
    last tracklet split between two sequences (so it makes two tracklets of 3 crops)."""
    crops = synthetic_crops(count, seed=1)
    index = np.arange(count)
    crops.track_id = index // per_tracklet
    crops.frame = 1 + spacing * (index % per_tracklet)
    crops.sequence = np.where(index >= count - per_tracklet // 2, "other", "synthetic")
    crops.track_id[:2] = -1   # two unlinked detections
    return crops


@pytest.fixture(scope="module")
def tracklet_crops_file(tmp_path_factory):
    return save_crops(tracklet_crops(), tmp_path_factory.mktemp("crops") / "tracklets.npz")


def test_tracklet_groups_split_by_sequence_and_drop_short_spans():
    crops = tracklet_crops()
    groups = tracklet_groups(crops, min_gap=15)
    # 8 ids; id 0 keeps 4 crops (span 30 frames), id 7 splits into 3 + 3 crops (spans 20 frames).
    assert len(groups) == 9
    for rows in groups:
        assert len(set(crops.sequence[rows])) == 1 and len(set(crops.track_id[rows])) == 1
        assert (np.diff(crops.frame[rows]) > 0).all()
    assert len(tracklet_groups(crops, min_gap=25)) == 7  # the two halves of id 7 span only 20 frames


def settings(**changes):
    return dataclasses.replace(TINY.train, **{"tracklet_weight": 1.0, "tracklet_pairs_per_batch": 4,
                                              "tracklet_min_gap": 15, **changes})


def test_tracklet_batches_are_distinct_tracklets_with_pairs_min_gap_apart(tracklet_crops_file, tmp_path):
    trainer = Trainer(tracklet_crops_file, settings(), TINY.model, tmp_path, progress=False)
    crops = trainer.crops
    for step in range(5):
        indices, negatives = (x.numpy() for x in trainer.tracklet_indices(step))
        again = trainer.tracklet_indices(step)
        assert torch.equal(again[0], torch.from_numpy(indices)) and torch.equal(again[1], torch.from_numpy(negatives))
        first, second = indices[:4], indices[4:]
        assert (crops.track_id[first] == crops.track_id[second]).all() and (crops.track_id[first] >= 0).all()
        assert (crops.sequence[first] == crops.sequence[second]).all()
        assert (np.abs(crops.frame[first] - crops.frame[second]) >= 15).all()
        assert len({(s, t) for s, t in zip(crops.sequence[first], crops.track_id[first])}) == 4
    with pytest.raises(InputError, match="tracklets span"):
        Trainer(tracklet_crops_file, settings(tracklet_pairs_per_batch=10), TINY.model, tmp_path, progress=False)


def test_ground_truth_ids_in_the_tracklet_term_are_warned_and_recorded(tmp_path):
    """crops --source gt trained the 'label-free' tracklet term on ground-truth identities without a
    word, and the sidecar named no crop source."""
    crops = tracklet_crops()
    crops.source = np.full(len(crops), "gt")
    path = save_crops(crops, tmp_path / "gt.npz")
    with pytest.warns(InputWarning, match="ground-truth identity .* trained with labels, not label-free"):
        trainer = Trainer(path, settings(), TINY.model, tmp_path / "run", progress=False)
    provenance = read_weights_info(trainer.export_weights()).provenance
    assert provenance["crop_sources"] == ["gt"] and provenance["final_c2"] is None  # strict JSON: no NaN


def test_shared_frame_negatives_are_exactly_the_tracklets_sharing_a_frame(tracklet_crops_file, tmp_path):
    """Tracklets of crops.sequence "synthetic" all span frames 1-51 (they share frames); the one of
    "other" shares none with them. Each drawn pair of tracklets is a negative iff one sequence and
    overlapping frame spans, checked from the crops themselves; "batch" makes every other one a
    negative, and the "shared-frame" draw puts tracklets sharing a frame together."""
    trainer = Trainer(tracklet_crops_file, settings(tracklet_pairs_per_batch=3, tracklet_negatives="shared-frame"),
                      TINY.model, tmp_path, progress=False)
    crops = trainer.crops
    for step in range(20):
        indices, negatives = (x.numpy() for x in trainer.tracklet_indices(step))
        first = indices[:3]
        key = list(zip(crops.sequence[first], crops.track_id[first]))
        assert len(set(key)) == 3
        spans = [(crops.frame[(crops.sequence == s) & (crops.track_id == t)].min(),
                  crops.frame[(crops.sequence == s) & (crops.track_id == t)].max()) for s, t in key]
        for i in range(3):
            for j in range(3):
                shares = i != j and key[i][0] == key[j][0] and spans[i][0] <= spans[j][1] and spans[j][0] <= spans[i][1]
                assert negatives[i, j] == shares
    batch = Trainer(tracklet_crops_file, settings(tracklet_negatives="batch"), TINY.model, tmp_path, progress=False)
    assert (batch.tracklet_indices(0)[1].numpy() == ~np.eye(4, dtype=bool)).all()
    # The 8 tracklets of "synthetic" share frames; the one of "other" shares none. A draw of 4 whose
    # first tracklet is in "synthetic" fills up from its group there; one that starts at "other"
    # (a group of one) must go on in "synthetic". A uniform draw mixes them.
    def mixed_after_synthetic_seed(trainer):
        sequences = [trainer.crops.sequence[trainer.tracklet_indices(step)[0].numpy()[:4]] for step in range(40)]
        return sum(s[0] == "synthetic" and "other" in s[1:] for s in sequences)
    assert mixed_after_synthetic_seed(batch) == 0
    uniform = Trainer(tracklet_crops_file, settings(tracklet_draw="uniform"), TINY.model, tmp_path, progress=False)
    assert mixed_after_synthetic_seed(uniform) > 0


def test_infonce_ignores_what_is_not_a_negative():
    """A tracklet that is no negative of the others gets no gradient from them, an anchor with no
    negative costs 0, and the all-others mask is the default."""
    first = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    second = torch.tensor([[0.5, 0.0], [1.0, 0.5], [0.5, 1.0]], requires_grad=True)
    everyone = ~torch.eye(3, dtype=torch.bool)
    assert tracklet_infonce(first, second, 1.0, everyone).item() == tracklet_infonce(first, second, 1.0).item()
    isolated = everyone.clone()
    isolated[2, :] = isolated[:, 2] = False          # tracklet 2 shares no frame with 0 or 1
    tracklet_infonce(first, second, 1.0, isolated).backward()
    assert first.grad[2].abs().sum() == 0 and second.grad[2].abs().sum() == 0
    alone = torch.zeros(3, 3, dtype=torch.bool)
    assert tracklet_infonce(first, second, 1.0, alone).item() == 0.0


@pytest.mark.slow
def test_resume_with_tracklet_term_is_bit_identical(tracklet_crops_file, tmp_path):
    config = settings(steps=6, kappa=1.2, checkpoint_every=100, log_every=2)
    reference, resumed = assert_resume_is_bit_identical(tracklet_crops_file, config, TINY.model, tmp_path,
                                                        stop_after=3)
    resumed_rows = {row["step"]: row for row in resumed.log_rows}
    for row in reference.log_rows:
        assert math.isfinite(row["tracklet"]) and row["tracklet"] > 0
        assert float(resumed_rows[row["step"]]["tracklet"]) == row["tracklet"]
    header = (tmp_path / "b" / "log.csv").read_text().splitlines()[0].split(",")
    assert {"C", "R", "loss", "tracklet"} <= set(header)


def test_tracklet_term_alone_trains_only_the_encoder_mean(tracklet_crops_file, tmp_path):
    trainer = Trainer(tracklet_crops_file, settings(steps=3, reconstruction=False), TINY.model, tmp_path,
                      progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("encoder.features", "encoder.latent_mean")) for k in changed)
    assert "encoder.latent_mean.weight" in changed
    row = trainer.log_rows[-1]
    assert math.isnan(row["C"]) and math.isnan(row["C_ema"]) and row["tracklet"] > 0


def test_checkpoint_without_tracklet_keys_resumes_with_their_defaults(tracklet_crops_file, tmp_path):
    """A checkpoint written before the tracklet settings existed resumes as the run it was (term
    off), and refuses a config that turns the term on."""
    old_config = dataclasses.replace(TINY.train, steps=4)
    Trainer(tracklet_crops_file, old_config, TINY.model, tmp_path, progress=False).run(stop_after=2)
    path = tmp_path / CHECKPOINT
    with safe_open(str(path), framework="pt") as fh:
        state = json.loads(fh.metadata()["state"])
    new_keys = ("tracklet_weight", "tracklet_temperature", "tracklet_pairs_per_batch", "tracklet_min_gap",
                "reconstruction")
    state["train_config"] = {k: v for k, v in state["train_config"].items() if k not in new_keys}
    save_file(load_file(str(path)), str(path), metadata={"state": json.dumps(state)})
    assert TrainConfig.from_dict(state["train_config"]) == old_config
    assert Trainer(tracklet_crops_file, old_config, TINY.model, tmp_path, resume=True, progress=False).step == 2
    with pytest.raises(InputError, match="tracklet_weight"):
        Trainer(tracklet_crops_file, dataclasses.replace(old_config, tracklet_weight=1.0,
                                                         tracklet_pairs_per_batch=4),
                TINY.model, tmp_path, resume=True, progress=False)


def test_tracklet_crops_from_tud_campus(data_root, tmp_path):
    if not (data_root / "MOT15" / "train" / "TUD-Campus").is_dir():
        pytest.skip("TUD-Campus not in the data root")
    crops = load_crops(cut_crops(["TUD-Campus"], tmp_path / "tracklets.npz", "tracklets", data_root,
                                 min_confidence=0.3, progress=False, mining=MiningConfig(min_length=5)))
    assert set(crops.source) == {"tracklets"} and (crops.track_id >= -1).all()
    tracklets = np.unique(crops.track_id[crops.track_id >= 0])
    assert len(tracklets) >= 2
    for tracklet in tracklets:
        frames = crops.frame[crops.track_id == tracklet]
        assert len(frames) >= 5 and (np.diff(frames) == 1).all()
