"""Embedded default dataset: synthetic people written in the COCO person-keypoint format.

Each image holds a few articulated figures (filled torso, thick limbs, round head with face
marks) on a textured background with unannotated limb-like distractors and occluders on top.
Left limbs are drawn in a blue family and right limbs in an orange family; front-facing figures
show a face and a collar, back-facing ones show hair and no face (nose/eyes unlabeled), so the
left/right assignment stays learnable under flip augmentation. Visibility is exact: a labeled
keypoint is 2 when its pixel shows one of the figure's own parts that carry that joint, 1 when
it is covered (by another figure, an occluder or its own limb) and the point is ``(0, 0, 0)``
when outside the image. ``area`` is the visible mask's pixel count and ``bbox`` is tight around
it. Output is byte-identical for a given seed (one ``numpy`` Generator per image).

``python -m hrnet.data.synthetic.coco_keypoints --root DIR --num-train N --num-val M --seed S``
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import cv2
import numpy as np

from hrnet.data.coco_constants import PERSON_CATEGORY
from hrnet.data.synthetic import cli
from hrnet.data.synthetic.canvas import SubpixelCanvas, add_noise, maybe_blur, noise_bank, shade
from hrnet.data.synthetic.coco_figures import draw_figure, palette, place_figures, unit
from hrnet.data.synthetic.skeletons import SKELETONS, SyntheticSkeleton
from hrnet.data.synthetic.writer import CocoSplit, write_coco_dataset
from hrnet.errors import InputError

MIN_VISIBLE_FRACTION = 0.25
# Pixel noise: seed of the fixed bank, its margin over the image (crop offsets 0..pad), sigmas.
NOISE_SEED, NOISE_PAD, NOISE_SIGMAS = 20240611, 64, (2, 3.5, 5, 6.5, 8)
OUTPUT = CocoSplit(
    ann_file="person_keypoints_{split}.json",
    description="HRNet synthetic COCO-format person keypoints",
    contributor="hrnet.data.synthetic_coco",
    categories=[PERSON_CATEGORY],
    compact_json=True,
)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Two-colour gradient + low-frequency colour blotches (one cubic upsample) + random shapes."""
    gw, gh = max(2, w // 24), max(2, h // 24)
    c1, c2 = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
    ang = rng.uniform(0, 2 * np.pi)
    t = np.arange(gw)[None, :] * np.cos(ang) * gh / gw + np.arange(gh)[:, None] * np.sin(ang)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    low = c1 + t[..., None] * (c2 - c1) + rng.uniform(-45, 45, (gh, gw, 3))
    img = cv2.resize(np.clip(low, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(4, 13))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        size = int(rng.integers(6, max(8, min(w, h) // 3)))
        kind = int(rng.integers(4))
        fill = -1 if rng.random() < 0.6 else int(rng.integers(1, 4))
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + size, y + int(size * rng.uniform(0.3, 2))), color, fill)
        elif kind == 1:
            cv2.circle(img, (x, y), size // 2, color, fill, cv2.LINE_AA)
        elif kind == 2:
            end = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, (x, y), end, color, int(rng.integers(1, 5)), cv2.LINE_AA)
        else:
            axes = (size // 2, max(1, int(size * rng.uniform(0.1, 0.5))))
            cv2.ellipse(img, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, color, fill, cv2.LINE_AA)
    return img


def _distractors(
    cv: SubpixelCanvas, rng: np.random.Generator, w: int, h: int, label: int, count: int
) -> None:
    """Unannotated limb-like strokes (in the limb colour families) and head-like blobs."""
    for _ in range(count):
        pal = palette(rng)
        ph = rng.uniform(0.3, 0.8) * h
        a = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        if rng.random() < 0.65:
            color = pal[["left", "right", "left_leg", "right_leg", "torso"][int(rng.integers(5))]]
            thick = ph * rng.uniform(0.07, 0.11)
            b = a + unit(rng.uniform(0, 360)) * ph * 0.2
            c = b + unit(rng.uniform(0, 360)) * ph * 0.18
            cv.line(a, b, thick, color, label)
            if rng.random() < 0.6:
                cv.line(b, c, thick * 0.85, color, label)
            cv.disc(b, thick * 0.45, shade(color, pal["joint"]), label)
        else:
            color = pal["skin"] if rng.random() < 0.6 else pal["hair"]
            cv.disc(a, ph * rng.uniform(0.05, 0.09), color, label)


def _occluders(cv: SubpixelCanvas, rng: np.random.Generator, anchors: list[tuple[np.ndarray, float]]) -> None:
    """Patches over random joints of the placed figures (owner -1)."""
    for _ in range(int(rng.choice([0, 0, 1, 1, 2, 3]))):
        pts, ph = anchors[int(rng.integers(len(anchors)))]
        c = pts[int(rng.integers(len(pts)))] + rng.normal(0, 0.05 * ph, 2)
        sw, sh = rng.uniform(0.1, 0.25, 2) * ph
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            ang = rng.uniform(0, 180)
            u, v = unit(ang) * sw / 2, unit(ang + 90) * sh / 2
            cv.poly([c + u + v, c + u - v, c - u - v, c - u + v], color, -1)
        else:
            cv.disc(c, (sw + sh) / 4, color, -1)


def _annotate(
    fig: dict, pid: int, owner: np.ndarray, pid_map: np.ndarray, rng, skeleton: SyntheticSkeleton
) -> dict | None:
    mask = pid_map == pid
    area = int(mask.sum())
    if area < MIN_VISIBLE_FRACTION * fig["drawn"] or area == 0:
        return None  # mostly hidden behind later figures/occluders: left as an unlabeled distractor
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    bbox = [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]
    h, w = owner.shape
    kps: list[float] = []
    for k, point in enumerate(skeleton.points):
        x, y = fig["to_img"](fig["kp"][point] if isinstance(point, int) else fig[point])
        ix, iy = int(round(x)), int(round(y))
        if (k in skeleton.face and not fig["front"]) or not (0 <= ix < w and 0 <= iy < h):
            kps += [0, 0, 0]
            continue
        o = int(owner[iy, ix])
        if o > 0 and (o - 1) // 32 == pid:
            v = 2 if (o - 1) % 32 in skeleton.parts[k] else 1
        else:
            v = 1 if rng.random() < 0.85 else 0  # annotators skip some hidden joints
        kps += [round(float(x), 2), round(float(y), 2), v] if v else [0, 0, 0]
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    segmentation = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
    if not segmentation:  # tiny slivers: fall back to the box outline
        x0, y0, bw, bh = bbox
        segmentation = [[x0, y0, x0 + bw - 1, y0, x0 + bw - 1, y0 + bh - 1, x0, y0 + bh - 1]]
    return {
        "category_id": skeleton.category["id"], "iscrowd": 0, "area": area, "bbox": bbox,
        "num_keypoints": sum(1 for v in kps[2::3] if v > 0), "keypoints": kps,
        "segmentation": segmentation,
    }  # fmt: skip


def render_image(
    rng: np.random.Generator,
    size: tuple[int, int],
    persons: tuple[int, int],
    skeleton: SyntheticSkeleton = SKELETONS["coco"],
) -> tuple[np.ndarray, list[dict]]:
    """One BGR image (H, W, 3) and its person annotations (without ids) in ``skeleton``'s keypoints."""
    w, h = size
    image = _background(rng, w, h)
    owner = np.zeros((h, w), dtype=np.int16)
    cv = SubpixelCanvas(image, owner)
    _distractors(cv, rng, w, h, 0, int(rng.integers(1, 5)))
    figures = place_figures(rng, w, h, int(rng.integers(persons[0], persons[1] + 1)))
    for pid, fig in enumerate(figures):
        draw_figure(cv, fig, fig["to_img"], fig["palette"], pid * 32 + 1, rng)
        fig["drawn"] = int(np.count_nonzero((owner - 1) // 32 == pid))
    if figures:
        anchors = [(np.array([f["to_img"](p) for p in f["kp"]]), f["box"][3] - f["box"][1]) for f in figures]
        _occluders(cv, rng, anchors)
    if rng.random() < 0.3:
        _distractors(cv, rng, w, h, -1, 1)
    pid_map = np.where(owner > 0, (owner - 1) // 32, -1)
    anns = [a for pid, fig in enumerate(figures) if (a := _annotate(fig, pid, owner, pid_map, rng, skeleton))]
    bank = noise_bank(w, h, NOISE_SEED, NOISE_PAD, NOISE_SIGMAS)
    y0, x0 = int(rng.integers(0, NOISE_PAD + 1)), int(rng.integers(0, NOISE_PAD + 1))
    image = add_noise(image, bank[int(rng.integers(len(bank)))], y0, x0)
    return maybe_blur(image, rng, 0.25), anns


def _split_summary(count: int, annotations: list[dict]) -> dict:
    return {
        "images": count,
        "annotations": len(annotations),
        "annotations_with_keypoints": sum(1 for a in annotations if a["num_keypoints"] > 0),
        "labeled_keypoints": sum(a["num_keypoints"] for a in annotations),
    }


def generate_coco_keypoints(
    root: Path,
    num_train_images: int,
    num_val_images: int,
    image_size: tuple[int, int] = (320, 240),
    persons_per_image: tuple[int, int] = (1, 4),
    seed: int = 0,
    progress: bool = True,
    jpeg_quality: int = 90,
    skeleton: str = "coco",
) -> dict:
    """Write the synthetic dataset under ``root`` (COCO layout); returns per-split counts.

    ``image_size`` is (width, height); ``persons_per_image`` an inclusive (min, max) range;
    ``skeleton`` the keypoint set annotated (:data:`~hrnet.data.synthetic.skeletons.SKELETONS`).
    """
    if skeleton not in SKELETONS:
        raise InputError(f"skeleton must be one of {sorted(SKELETONS)}, got {skeleton!r}")
    if num_train_images < 0 or num_val_images < 0:
        raise InputError("image counts must be >= 0")
    lo, hi = persons_per_image
    if not 0 <= lo <= hi:
        raise InputError(f"persons_per_image must be 0 <= min <= max, got {persons_per_image}")
    if min(image_size) < 32:
        raise InputError(f"image_size must be at least 32x32, got {image_size}")
    root = Path(root)
    size = (int(image_size[0]), int(image_size[1]))
    chosen = SKELETONS[skeleton]
    render = functools.partial(render_image, size=size, persons=(lo, hi), skeleton=chosen)
    counts = {"train": num_train_images, "val": num_val_images}
    output = dataclasses.replace(OUTPUT, categories=[chosen.category])
    splits = write_coco_dataset(root, counts, seed, render, output, jpeg_quality, _split_summary, progress)
    return {"root": str(root), "seed": seed, "image_size": list(size), **splits}


def main(argv: list[str] | None = None) -> None:
    parser = cli.parser(__doc__, num_train=2000, num_val=300, size=(320, 240), per_image=("persons", 1, 4))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    summary = generate_coco_keypoints(
        args.root, args.num_train, args.num_val, (args.width, args.height),
        (args.min_persons, args.max_persons), args.seed, progress=not args.no_progress,
    )  # fmt: skip
    cli.print_summary(summary)


if __name__ == "__main__":
    main()
