"""Benchmark the success classifier on the simulated WidowX 250 cube/bowl scene.

Frames come from scripted-expert rollouts (both tasks, some cut short as failures) and from
random set-state placements, each in a freshly randomised scene (object/distractor placement,
colours, lighting, camera jitter). A classifier is trained on one set of seeds, calibrated on a
held-out slice of it, and evaluated on DIFFERENT seeds against the simulator's ground truth
`scene.success(task)`, for both tasks on every frame.

Training labels follow the deployment rule (`reward_vlm.build_labelled_frames`): the last
frames of a successful rollout are positives for its task, earlier frames and cut-short rollouts
negatives. Frames are also labelled for the OTHER task, and placements for both tasks, from the
simulator's ground truth (standing in for scripted/human labels a lab would have).

    python bench/reward.py            # full run: 960 rollouts, 80 px, 150 held out (~20 min on 2 CPU cores)
    python bench/reward.py --quick    # smoke run (~10-30 s)

Last stdout line: one JSON object (accuracy, precision, recall, fpr, fnr, frames_per_s, model, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np
from tqdm import tqdm

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from reward_vlm import (  # noqa: E402
    ConvClassifierConfig, ConvSuccessClassifier, Episode, LabelledFrames, LabelRule, TrainConfig, build_labelled_frames,
    evaluate, load_classifier,
)

SCENE = "widowx250_cube_bowl"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rollout(scene, task_id: str, rng: np.random.Generator, max_steps: int, post_success_steps: int, noise: float):
    """Run the scripted expert for `task_id` from a fresh randomised start.

    Returns frames (T, H, W, 3) uint8 and ground truth (T, 2) bool for (forward, backward).
    Stops `post_success_steps` after success (the arm retreats), or at `max_steps`.
    """
    fwd, bwd = (t.id for t in scene.tasks)
    scene.randomize(rng, task_id=task_id)
    expert = scene.expert(task_id, noise=noise, rng=rng)
    frames, gt = [scene.render()], [(scene.success(fwd), scene.success(bwd))]
    after = None
    for step in range(max_steps):
        scene.step(expert(scene.observe()))
        frames.append(scene.render())
        gt.append((scene.success(fwd), scene.success(bwd)))
        if after is None and gt[-1][scene.tasks.index(scene.task(task_id))]:
            after = step
        if after is not None and step - after >= post_success_steps:
            break
    return np.stack(frames), np.array(gt, bool)


def generate(seed: int, n_rollouts: int, n_placements: int, image_size: int, fail_frac: float, desc: str):
    """Episodes (frames, task, gt) and placement frames with ground truth, from one rng stream."""
    from hardware.sim import make_scene

    rng = np.random.default_rng(seed)
    scene = make_scene(SCENE, seed=seed, image_size=image_size)
    tasks = scene.tasks
    episodes = []
    try:
        for i in tqdm(range(n_rollouts), desc=f"{desc} rollouts", file=sys.stderr, leave=False):
            task = tasks[i % 2]
            cut = rng.random() < fail_frac  # a failure: stopped before the expert could finish
            max_steps = int(rng.integers(3, 12)) if cut else scene.max_episode_steps
            frames, gt = rollout(scene, task.id, rng, max_steps, post_success_steps=2, noise=0.1)
            episodes.append((frames, task.id, gt))
        place_frames, place_gt = [], []
        for _ in tqdm(range(n_placements), desc=f"{desc} placements", file=sys.stderr, leave=False):
            scene.randomize(rng, task_id=tasks[int(rng.integers(2))].id)
            place_frames.append(scene.render())
            place_gt.append((scene.success(tasks[0].id), scene.success(tasks[1].id)))
    finally:
        scene.close()
    return tasks, episodes, np.stack(place_frames), np.array(place_gt, bool)


def training_set(tasks, episodes, place_frames, place_gt, rule: LabelRule, reverse_labels: str = "sim",
                 reverse_start_frames: int = 4) -> LabelledFrames:
    """Labelled frames for training.

    - a rollout's own task: the deployment rule of `build_labelled_frames` (last frames of a
      success positive, earlier frames and cut-short rollouts negative; no simulator peeking);
    - the reverse task on the same frames: `reverse_labels="sim"` takes the simulator's ground
      truth per frame (standing in for per-frame human labels); "rule" labels only what a
      reset-free lab knows for sure: the first `reverse_start_frames` frames positive (a task
      starts where its reverse ended) and the last frames of a success negative;
    - placements (settled scenes, arm at reset): the simulator's ground truth for both tasks.
    """
    ids = [t.id for t in tasks]
    eps = []
    for frames, task_id, gt in episodes:
        own = ids.index(task_id)
        success = bool(gt[-1, own])
        eps.append(Episode(frames, task_id, outcome=success, label_source="scripted"))
        if reverse_labels == "sim":
            rev = gt[:, 1 - own].astype(np.int8)
        else:
            rev = np.full(len(frames), -1, np.int8)
            rev[:reverse_start_frames] = 1
            if success:
                rev[-rule.positive_frames:] = 0
        eps.append(Episode(frames, ids[1 - own], outcome=None, label_source="scripted", frame_labels=rev))
    for k in range(2):
        eps.append(Episode(place_frames, ids[k], outcome=None, label_source="scripted", frame_labels=place_gt[:, k].astype(np.int8)))
    return build_labelled_frames(eps, tasks, rule)


def eval_set(episodes, place_frames, place_gt, settle: int = 2):
    """Every frame x both tasks with ground truth: images (N,...), labels (N,), task idx (N,), settled (N,),
    source (N,) (rollout index, -1 for placements).

    `settled` is False for rollout frames within `settle` steps of a ground-truth change of that
    task (the cube being grasped/released: success flips on ~1 cm of height, often hidden by
    the gripper); placements are always settled.
    """
    frames = np.concatenate([f for f, _, _ in episodes] + [place_frames])
    gt = np.concatenate([g for _, _, g in episodes] + [place_gt])
    settled = []
    for _, _, g in episodes:
        ok = np.ones(g.shape, bool)
        for k in range(2):
            for c in np.flatnonzero(g[1:, k] != g[:-1, k]):
                ok[max(0, c + 1 - settle):c + 1 + settle, k] = False
        settled.append(ok)
    settled.append(np.ones(place_gt.shape, bool))
    settled = np.concatenate(settled)
    source = np.concatenate([np.full(len(f), i) for i, (f, _, _) in enumerate(episodes)] + [np.full(len(place_frames), -1)])
    n = frames.shape[0]
    return (np.concatenate([frames, frames]), np.concatenate([gt[:, 0], gt[:, 1]]).astype(np.float32),
            np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)]), np.concatenate([settled[:, 0], settled[:, 1]]),
            np.concatenate([source, source]))


def frames_per_second(clf, images: np.ndarray, task_ids: np.ndarray, batch: int, seconds: float = 3.0) -> float:
    b = images[:batch]
    t = task_ids[:batch]
    clf.predict(b, t)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        clf.predict(b, t)
        n += b.shape[0]
    return n / (time.perf_counter() - t0)


def _num(x: float, nd: int = 4):
    """Round for the report; NaN (an undefined rate) becomes null so the line is strict JSON."""
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small data set and few epochs (smoke test)")
    ap.add_argument("--render-size", type=int, default=128, help="sim camera image size (pixels)")
    ap.add_argument("--input-size", type=int, default=80, help="CNN input size (the crop is resized to it)")
    ap.add_argument("--crop", default="0.25,0.15,0.625,0.75",
                    help="top,left,height,width fractions of the frame the CNN sees (the table area of this scene)")
    ap.add_argument("--train-rollouts", type=int, default=960)
    ap.add_argument("--eval-rollouts", type=int, default=150,
                    help="held-out rollouts (at 30, one slow episode moved the FPR by 2 points)")
    ap.add_argument("--train-placements", type=int, default=2000)
    ap.add_argument("--eval-placements", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--target-precision", type=float, default=0.99)
    ap.add_argument("--out", type=pathlib.Path, default=None, help="keep the trained classifier and reliability PNG here")
    ap.add_argument("--reverse-labels", choices=("sim", "rule"), default="sim",
                    help="labels of the reverse task on rollout frames: simulator ground truth, or the reset-free rule only")
    ap.add_argument("--margin-frames", type=int, default=0,
                    help="frames before a success's last 3 left unlabelled (0: scripted rollouts know the success onset, "
                         "so the frames just before it are labelled negatives; these are where false positives came from)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.quick:
        args.train_rollouts, args.eval_rollouts = 10, 4
        args.train_placements, args.eval_placements = 100, 40
        args.epochs = 3
    out = args.out or pathlib.Path(tempfile.mkdtemp(prefix="bench_reward_"))
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    tasks, tr_eps, tr_pf, tr_pg = generate(1000 + args.seed, args.train_rollouts, args.train_placements, args.render_size, 0.25, "train")
    _, ev_eps, ev_pf, ev_pg = generate(900_000 + args.seed, args.eval_rollouts, args.eval_placements, args.render_size, 0.25, "eval")
    gen_s = time.perf_counter() - t0
    log(f"generated {sum(len(f) for f, _, _ in tr_eps) + len(tr_pf)} train / {sum(len(f) for f, _, _ in ev_eps) + len(ev_pf)} eval frames in {gen_s:.0f}s")

    rule = LabelRule(positive_frames=3, margin_frames=args.margin_frames)
    data = training_set(tasks, tr_eps, tr_pf, tr_pg, rule, args.reverse_labels)
    # calibration slice: the placements and rollouts of the last 20% of training episodes
    n_ep = len(tr_eps)
    calib_eps = set(range(int(0.8 * n_ep) * 2, n_ep * 2))
    is_cal = np.isin(data.episode, list(calib_eps)) | ((data.episode >= 2 * n_ep) & (data.frame >= int(0.8 * len(tr_pf))))
    fit_set, cal_set = data.subset(~is_cal), data.subset(is_cal)
    log(f"training on {len(fit_set)} labelled frames ({int(fit_set.labels.sum())} positive), calibrating on {len(cal_set)}")

    clf = ConvSuccessClassifier(tasks, ConvClassifierConfig(image_size=args.input_size, crop=tuple(float(v) for v in args.crop.split(","))), seed=args.seed)
    t1 = time.perf_counter()
    stats = clf.fit(fit_set.images, fit_set.labels, fit_set.task_ids, fit_set.weights,
                    TrainConfig(epochs=args.epochs, batch_size=64, lr=1e-3, seed=args.seed))
    train_s = time.perf_counter() - t1
    log(f"trained {stats.steps} steps in {train_s:.0f}s, epoch losses {[round(l, 4) for l in stats.epoch_losses]}")
    calib = clf.calibrate(cal_set.images, cal_set.labels, cal_set.task_ids, target_precision=args.target_precision)
    path = clf.save(out / f"v{clf.version:04d}", overwrite=True)
    clf = load_classifier(path)  # evaluate exactly what was saved

    ex, ey, et, settled, source = eval_set(ev_eps, ev_pf, ev_pg)
    report = clf.evaluate(ex, ey, et, reliability_png=out / "reliability.png")
    probs = clf.predict(ex, et)
    thr = clf.thresholds_for(et, len(et))
    settled_report = evaluate(probs[settled], ey[settled], thr[settled])
    half_report = evaluate(probs, ey, 0.5)
    per_task = {}
    for k, t in enumerate(tasks):
        m = et == k
        r = evaluate(probs[m], ey[m], clf.thresholds[t.id])
        fp = m & (ey == 0) & (probs >= thr)
        per_task[t.id] = {"accuracy": _num(r.accuracy), "precision": _num(r.precision), "recall": _num(r.recall),
                          "fpr": _num(r.fpr), "fnr": _num(r.fnr), "n": r.n, "n_pos": r.n_pos,
                          # false positives are bursty (one slow lowering = a dozen frames): say how many places they come from
                          "fp_frames": int(fp.sum()), "fp_rollouts": int(np.unique(source[fp & (source >= 0)]).size),
                          "fp_placements": int((fp & (source < 0)).sum())}
    import torch

    fps = frames_per_second(clf, ex, et, batch=64, seconds=1.0 if args.quick else 3.0)
    result = {
        "accuracy": _num(report.accuracy), "precision": _num(report.precision), "recall": _num(report.recall),
        "fpr": _num(report.fpr), "fnr": _num(report.fnr), "ece": _num(report.ece),
        "settled": {"accuracy": _num(settled_report.accuracy), "precision": _num(settled_report.precision),
                    "recall": _num(settled_report.recall), "fpr": _num(settled_report.fpr), "fnr": _num(settled_report.fnr),
                    "n": settled_report.n},
        "at_threshold_0_5": {"accuracy": _num(half_report.accuracy), "precision": _num(half_report.precision),
                             "recall": _num(half_report.recall), "fpr": _num(half_report.fpr), "fnr": _num(half_report.fnr)},
        "frames_per_s": round(fps, 1), "frames_per_s_device": f"cpu ({torch.get_num_threads()} threads, batch 64)",
        "vlm_frames_per_s_gpu": None,
        "model": clf.model_name, "scene": SCENE, "render_size": args.render_size,
        "n_train": len(fit_set), "n_calibration": len(cal_set), "n_eval": report.n, "n_eval_pos": report.n_pos,
        "temperature": round(clf.temperature, 4), "thresholds": {k: round(v, 4) for k, v in clf.thresholds.items()},
        "margin_frames": args.margin_frames, "per_task": per_task, "generate_s": round(gen_s, 1), "train_s": round(train_s, 1),
        "calibration_attainable": {k: v.get("attainable") for k, v in calib["tasks"].items()},
        "artifact": str(path), "reliability_png": str(out / "reliability.png"), "quick": bool(args.quick),
    }
    print(json.dumps(result, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
