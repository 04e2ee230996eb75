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

``python -m hrnet.data.synthetic_coco --root DIR --num-train N --num-val M --seed S``
"""

from __future__ import annotations

import argparse
import colorsys
import functools
import json
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hrnet.data.coco_constants import NUM_KEYPOINTS, PERSON_CATEGORY
from hrnet.errors import InputError

SPLITS = {"train": 0, "val": 1}
VAL_ID_OFFSET = 1_000_000
SHIFT = 4  # cv2 sub-pixel drawing: coordinates carry 4 fractional bits
ONE = 1 << SHIFT

# Part ids (owner map value = person * 32 + part + 1; occluders are -1).
TORSO, HEAD, FACE, EAR_L, EAR_R = 0, 1, 2, 3, 4
UARM_L, FARM_L, HAND_L, UARM_R, FARM_R, HAND_R = 5, 6, 7, 8, 9, 10
THIGH_L, SHIN_L, FOOT_L, THIGH_R, SHIN_R, FOOT_R = 11, 12, 13, 14, 15, 16
# Parts on which each COCO keypoint counts as visible.
JOINT_PARTS: tuple[tuple[int, ...], ...] = (
    (HEAD, FACE), (HEAD, FACE), (HEAD, FACE), (HEAD, EAR_L), (HEAD, EAR_R),
    (TORSO, UARM_L), (TORSO, UARM_R), (UARM_L, FARM_L), (UARM_R, FARM_R),
    (FARM_L, HAND_L), (FARM_R, HAND_R), (TORSO, THIGH_L), (TORSO, THIGH_R),
    (THIGH_L, SHIN_L), (THIGH_R, SHIN_R), (SHIN_L, FOOT_L), (SHIN_R, FOOT_R),
)  # fmt: skip
FACE_JOINTS = (0, 1, 2)
MIN_VISIBLE_FRACTION = 0.25


def _bgr(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((h / 360.0) % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return int(b * 255), int(g * 255), int(r * 255)


def _scaled(color: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(int(min(255, c * f)) for c in color)  # type: ignore[return-value]


class _Canvas:
    """Draws each primitive on the BGR image (anti-aliased) and on the int16 owner map."""

    def __init__(self, image: np.ndarray, owner: np.ndarray) -> None:
        self.image, self.owner = image, owner

    @staticmethod
    def _p(pt: np.ndarray) -> tuple[int, int]:
        return int(round(pt[0] * ONE)), int(round(pt[1] * ONE))

    def seg(self, a: np.ndarray, b: np.ndarray, thick: float, color, label: int) -> None:
        t = max(1, int(round(thick)))
        cv2.line(self.image, self._p(a), self._p(b), color, t, cv2.LINE_AA, SHIFT)
        cv2.line(self.owner, self._p(a), self._p(b), (label,), t, cv2.LINE_8, SHIFT)

    def disc(self, c: np.ndarray, r: float, color, label: int) -> None:
        rr = max(ONE // 2, int(round(r * ONE)))
        cv2.circle(self.image, self._p(c), rr, color, -1, cv2.LINE_AA, SHIFT)
        cv2.circle(self.owner, self._p(c), rr, (label,), -1, cv2.LINE_8, SHIFT)

    def poly(self, pts: list[np.ndarray], color, label: int) -> None:
        arr = np.array([self._p(p) for p in pts], dtype=np.int32)[None]
        cv2.fillPoly(self.image, arr, color, cv2.LINE_AA, SHIFT)
        cv2.fillPoly(self.owner, arr, (label,), cv2.LINE_8, SHIFT)


def _unit(deg: float) -> np.ndarray:
    rad = np.deg2rad(deg)
    return np.array([np.sin(rad), np.cos(rad)])  # local frame: x right, y up


def _sample_figure(rng: np.random.Generator, height: float) -> dict:
    """Joint positions in a local frame (pelvis at 0, y up, units px) plus drawing parameters."""

    def j(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    d = {k: v * height * j(0.92, 1.08) for k, v in dict(
        torso=0.30, neck=0.04, head_r=0.075, sh_w=0.25, hip_w=0.18, uarm=0.17, farm=0.15,
        thigh=0.235, shin=0.235, t_uarm=0.095, t_farm=0.08, t_thigh=0.12, t_shin=0.10,
        hand_r=0.037, foot=0.075,
    ).items()}  # fmt: skip
    front = rng.random() < 0.75
    wide = rng.random() < 0.45
    yaw = j(0.45, 1.0) if rng.random() < 0.5 else j(0.85, 1.0)
    face_shift = float(np.sqrt(1 - yaw**2)) * (1 if rng.random() < 0.5 else -1)
    s_left = 1.0 if front else -1.0  # person's left shows on the image right when facing us

    lean = rng.normal(0, 8)
    spine, lateral = _unit(lean), _unit(lean + 90)
    kp = np.zeros((NUM_KEYPOINTS, 2))
    mid_sh = spine * d["torso"]
    half_sh = lateral * s_left * d["sh_w"] / 2 * yaw
    half_hip = lateral * s_left * d["hip_w"] / 2 * yaw
    kp[5], kp[6], kp[11], kp[12] = mid_sh + half_sh, mid_sh - half_sh, half_hip, -half_hip

    head_deg = lean + rng.normal(0, 10)
    head_up, head_lat = _unit(head_deg), _unit(head_deg + 90)
    neck_top = mid_sh + spine * d["neck"]
    head_c = neck_top + head_up * d["head_r"]
    r = d["head_r"]
    fx = face_shift * 0.45 * r
    kp[0] = head_c + head_lat * fx - head_up * 0.18 * r
    for k, s in ((1, s_left), (2, -s_left)):
        kp[k] = head_c + head_lat * (fx + s * 0.4 * r * yaw) + head_up * 0.2 * r
    for k, s in ((3, s_left), (4, -s_left)):
        kp[k] = head_c + head_lat * (-0.3 * fx + s * 0.92 * r * max(yaw, 0.7)) + head_up * 0.05 * r

    def limb_dir(base_deg: float, side: float, angle: float) -> np.ndarray:
        return _unit(base_deg + 180 - side * angle)  # angle 0 = straight down, >0 = outward

    down_deg = lean
    feet = []
    sides = (((5, 7, 9), (11, 13, 15), s_left), ((6, 8, 10), (12, 14, 16), -s_left))
    for (sh, el, wr), (hp, kn, an), s in sides:
        a_up = j(-40, 175) if wide else j(5, 55)
        a_lo = a_up + (j(-150, 150) if wide else j(-20, 80))
        fa, fb = (j(0.65, 1.0), j(0.6, 1.0)) if wide else (j(0.9, 1.0), j(0.85, 1.0))
        kp[el] = kp[sh] + limb_dir(down_deg, s, a_up) * d["uarm"] * fa
        kp[wr] = kp[el] + limb_dir(down_deg, s, a_lo) * d["farm"] * fb
        l_up = j(-30, 95) if wide and rng.random() < 0.5 else j(-6, 22)
        l_lo = l_up + (j(-100, 100) if wide else j(-25, 25))
        fa, fb = (j(0.6, 1.0), j(0.6, 1.0)) if wide else (j(0.9, 1.0), j(0.9, 1.0))
        kp[kn] = kp[hp] + limb_dir(down_deg, s, l_up) * d["thigh"] * fa
        kp[an] = kp[kn] + limb_dir(down_deg, s, l_lo) * d["shin"] * fb
        feet.append(kp[an] + limb_dir(down_deg, s, l_lo + j(55, 110)) * d["foot"])
    return {
        "kp": kp,
        "dims": d,
        "front": front,
        "head_c": head_c,
        "neck": mid_sh,
        "feet": feet,
        "spine": spine,
        "lateral": lateral * s_left,
        "head_up": head_up,
        "hair": rng.random() < 0.8,
    }


def _palette(rng: np.random.Generator) -> dict:
    j = rng.uniform
    bright = j(0.7, 1.12)
    torso_h = [j(80, 165), j(265, 325), j(0, 360)][int(rng.integers(3))]
    torso_s = j(0.05, 0.18) if rng.random() < 0.25 else j(0.35, 0.8)
    left_arm = _bgr(j(205, 228), j(0.55, 0.9), j(0.65, 0.9) * bright)
    right_arm = _bgr(j(15, 35), j(0.6, 0.9), j(0.75, 0.95) * bright)
    leg_v = j(0.55, 0.8)
    return {
        "left": left_arm, "right": right_arm,
        "left_leg": _scaled(left_arm, leg_v), "right_leg": _scaled(right_arm, leg_v),
        "torso": _bgr(torso_h, torso_s, j(0.45, 0.9) * bright),
        "skin": _bgr(j(18, 32), j(0.25, 0.55), j(0.4, 0.95)),
        "hair": _bgr(j(15, 40), j(0.3, 0.8), j(0.08, 0.35)),
        "joint": j(0.55, 0.7),
    }  # fmt: skip


def _rot(v: np.ndarray, deg: float) -> np.ndarray:
    rad = np.deg2rad(deg)
    c, s = np.cos(rad), np.sin(rad)
    return np.array([v[0] * c + v[1] * s, -v[0] * s + v[1] * c])


def _draw_figure(cv: _Canvas, fig: dict, to_img, pal: dict, label0: int, rng: np.random.Generator) -> None:
    """Legs, (arms behind), torso, neck, head, ears, face, arms, shoulder discs - in that order."""
    kp, d, jf = fig["kp"], fig["dims"], pal["joint"]
    P = to_img
    legs = [(11, 13, 15, 0, pal["left_leg"], (THIGH_L, SHIN_L, FOOT_L)),
            (12, 14, 16, 1, pal["right_leg"], (THIGH_R, SHIN_R, FOOT_R))]  # fmt: skip
    if rng.random() < 0.5:
        legs.reverse()
    for hip, knee, ankle, side, color, (p_up, p_lo, p_end) in legs:
        cv.seg(P(kp[hip]), P(kp[knee]), d["t_thigh"], color, label0 + p_up)
        cv.seg(P(kp[knee]), P(kp[ankle]), d["t_shin"], color, label0 + p_lo)
        cv.disc(P(kp[knee]), d["t_thigh"] * 0.42, _scaled(color, jf), label0 + p_lo)
        cv.seg(P(kp[ankle]), P(fig["feet"][side]), d["t_shin"] * 0.75, _scaled(color, 0.45), label0 + p_end)
        cv.disc(P(kp[ankle]), d["t_shin"] * 0.45, _scaled(color, jf), label0 + p_lo)

    arms = [(5, 7, 9, pal["left"], (UARM_L, FARM_L, HAND_L)),
            (6, 8, 10, pal["right"], (UARM_R, FARM_R, HAND_R))]  # fmt: skip
    if rng.random() < 0.5:
        arms.reverse()
    behind = [rng.random() < 0.15 for _ in arms]

    def draw_arm(arm: tuple) -> None:
        sh, el, wr, color, (p_up, p_lo, p_end) = arm
        cv.seg(P(kp[sh]), P(kp[el]), d["t_uarm"], color, label0 + p_up)
        cv.seg(P(kp[el]), P(kp[wr]), d["t_farm"], color, label0 + p_lo)
        cv.disc(P(kp[el]), d["t_uarm"] * 0.45, _scaled(color, jf), label0 + p_lo)
        along = (kp[wr] - kp[el]) / (np.linalg.norm(kp[wr] - kp[el]) + 1e-6)
        cv.disc(P(kp[wr] + along * d["hand_r"]), d["hand_r"], pal["skin"], label0 + p_end)
        cv.disc(P(kp[wr]), d["t_farm"] * 0.45, _scaled(color, jf), label0 + p_lo)
        cv.disc(P(kp[sh]), d["t_uarm"] * 0.42, _scaled(color, jf), label0 + p_up)

    for arm, back in zip(arms, behind, strict=True):
        if back:
            draw_arm(arm)
    lat, spine = fig["lateral"], fig["spine"]
    e = d["t_uarm"] * 0.45
    torso = [kp[11] + lat * e - spine * e, kp[5] + lat * e + spine * e * 0.5,
             kp[6] - lat * e + spine * e * 0.5, kp[12] - lat * e - spine * e]  # fmt: skip
    cv.poly([P(p) for p in torso], pal["torso"], label0 + TORSO)
    for hip in (11, 12):
        cv.disc(P(kp[hip]), d["t_thigh"] * 0.4, _scaled(pal["torso"], jf), label0 + TORSO)
    r, hc, up = d["head_r"], fig["head_c"], fig["head_up"]
    cv.seg(P(fig["neck"]), P(hc), r * 0.8, pal["skin"], label0 + HEAD)
    if fig["front"]:
        collar = [fig["neck"] + lat * r * 0.9, fig["neck"] - lat * r * 0.9, fig["neck"] - spine * r * 1.3]
        cv.poly([P(p) for p in collar], _scaled(pal["torso"], 1.5), label0 + TORSO)
    cv.disc(P(hc), r, pal["skin"] if fig["front"] else pal["hair"], label0 + HEAD)
    if fig["front"] and fig["hair"]:
        cap = [hc + _rot(up, a) * r * 1.04 for a in range(-100, 101, 20)]
        cv.poly([P(p) for p in cap], pal["hair"], label0 + HEAD)
    for k, part, color in ((3, EAR_L, pal["left"]), (4, EAR_R, pal["right"])):
        cv.disc(P(kp[k]), r * 0.24, _scaled(color, 0.8), label0 + part)
    if fig["front"]:
        eye_r = max(0.6, r * 0.15)
        cv.disc(P(kp[1]), eye_r, _scaled(pal["left"], 0.35), label0 + FACE)
        cv.disc(P(kp[2]), eye_r, _scaled(pal["right"], 0.35), label0 + FACE)
        cv.disc(P(kp[0]), eye_r * 1.1, (40, 40, 190), label0 + FACE)
    for arm, back in zip(arms, behind, strict=True):
        if not back:
            draw_arm(arm)


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


def _distractors(cv: _Canvas, rng: np.random.Generator, w: int, h: int, label: int, count: int) -> None:
    """Unannotated limb-like strokes (in the limb colour families) and head-like blobs."""
    for _ in range(count):
        pal = _palette(rng)
        ph = rng.uniform(0.3, 0.8) * h
        a = np.array([rng.uniform(0, w), rng.uniform(0, h)])
        if rng.random() < 0.65:
            color = pal[["left", "right", "left_leg", "right_leg", "torso"][int(rng.integers(5))]]
            thick = ph * rng.uniform(0.07, 0.11)
            b = a + _unit(rng.uniform(0, 360)) * ph * 0.2
            c = b + _unit(rng.uniform(0, 360)) * ph * 0.18
            cv.seg(a, b, thick, color, label)
            if rng.random() < 0.6:
                cv.seg(b, c, thick * 0.85, color, label)
            cv.disc(b, thick * 0.45, _scaled(color, pal["joint"]), label)
        else:
            color = pal["skin"] if rng.random() < 0.6 else pal["hair"]
            cv.disc(a, ph * rng.uniform(0.05, 0.09), color, label)


def _occluders(cv: _Canvas, rng: np.random.Generator, anchors: list[tuple[np.ndarray, float]]) -> None:
    """Patches over random joints of the placed figures (owner -1)."""
    for _ in range(int(rng.choice([0, 0, 1, 1, 2, 3]))):
        pts, ph = anchors[int(rng.integers(len(anchors)))]
        c = pts[int(rng.integers(len(pts)))] + rng.normal(0, 0.05 * ph, 2)
        sw, sh = rng.uniform(0.1, 0.25, 2) * ph
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            ang = rng.uniform(0, 180)
            u, v = _unit(ang) * sw / 2, _unit(ang + 90) * sh / 2
            cv.poly([c + u + v, c + u - v, c - u - v, c - u + v], color, -1)
        else:
            cv.disc(c, (sw + sh) / 4, color, -1)


def _to_image_fn(pelvis: np.ndarray, rot_deg: float):
    rad = np.deg2rad(rot_deg)
    right = np.array([np.cos(rad), np.sin(rad)])
    up = np.array([np.sin(rad), -np.cos(rad)])
    return lambda p: pelvis + p[0] * right + p[1] * up


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box, so that one figure never hides inside another."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    return iw * ih / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def _place_figures(rng: np.random.Generator, w: int, h: int, count: int) -> list[dict]:
    placed: list[dict] = []
    for _ in range(count):
        for _attempt in range(8):
            height = rng.uniform(0.4, 0.95) * h
            fig = _sample_figure(rng, height)
            rot = rng.normal(0, 12) if rng.random() < 0.9 else rng.uniform(-90, 90)
            to_img = _to_image_fn(np.zeros(2), rot)
            local = np.array([to_img(p) for p in fig["kp"]] + [to_img(fig["head_c"])])
            pad = fig["dims"]["head_r"] * 1.2
            lo, hi = local.min(0) - pad, local.max(0) + pad
            slack = (hi - lo) * (0.35 if rng.random() < 0.2 else 0.08)
            pmin, pmax = -lo - slack, np.array([w, h]) - hi + slack
            pelvis = rng.uniform(np.minimum(pmin, pmax), np.maximum(pmin, pmax))
            box = np.concatenate([lo + pelvis, hi + pelvis])
            if all(_overlap(box, o["box"]) < 0.55 for o in placed):
                fig.update(box=box, to_img=_to_image_fn(pelvis, rot), palette=_palette(rng))
                placed.append(fig)
                break
    return placed


def _annotate(fig: dict, pid: int, owner: np.ndarray, pid_map: np.ndarray, rng) -> dict | None:
    mask = pid_map == pid
    area = int(mask.sum())
    if area < MIN_VISIBLE_FRACTION * fig["drawn"] or area == 0:
        return None  # mostly hidden behind later figures/occluders: left as an unlabeled distractor
    ys, xs = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    bbox = [int(xs[0]), int(ys[0]), int(xs[-1] - xs[0] + 1), int(ys[-1] - ys[0] + 1)]
    h, w = owner.shape
    kps: list[float] = []
    for k, p in enumerate(fig["kp"]):
        x, y = fig["to_img"](p)
        ix, iy = int(round(x)), int(round(y))
        if (k in FACE_JOINTS and not fig["front"]) or not (0 <= ix < w and 0 <= iy < h):
            kps += [0, 0, 0]
            continue
        o = int(owner[iy, ix])
        if o > 0 and (o - 1) // 32 == pid:
            v = 2 if (o - 1) % 32 in JOINT_PARTS[k] else 1
        else:
            v = 1 if rng.random() < 0.85 else 0  # annotators skip some hidden joints
        kps += [round(float(x), 2), round(float(y), 2), v] if v else [0, 0, 0]
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    segmentation = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
    if not segmentation:  # tiny slivers: fall back to the box outline
        x0, y0, bw, bh = bbox
        segmentation = [[x0, y0, x0 + bw - 1, y0, x0 + bw - 1, y0 + bh - 1, x0, y0 + bh - 1]]
    return {
        "category_id": 1, "iscrowd": 0, "area": area, "bbox": bbox,
        "num_keypoints": sum(1 for v in kps[2::3] if v > 0), "keypoints": kps,
        "segmentation": segmentation,
    }  # fmt: skip


def render_image(
    rng: np.random.Generator, size: tuple[int, int], persons: tuple[int, int]
) -> tuple[np.ndarray, list[dict]]:
    """One BGR image (H, W, 3) and its person annotations (without ids)."""
    w, h = size
    image = _background(rng, w, h)
    owner = np.zeros((h, w), dtype=np.int16)
    cv = _Canvas(image, owner)
    _distractors(cv, rng, w, h, 0, int(rng.integers(1, 5)))
    figures = _place_figures(rng, w, h, int(rng.integers(persons[0], persons[1] + 1)))
    for pid, fig in enumerate(figures):
        _draw_figure(cv, fig, fig["to_img"], fig["palette"], pid * 32 + 1, rng)
        fig["drawn"] = int(np.count_nonzero((owner - 1) // 32 == pid))
    if figures:
        anchors = [(np.array([f["to_img"](p) for p in f["kp"]]), f["box"][3] - f["box"][1]) for f in figures]
        _occluders(cv, rng, anchors)
    if rng.random() < 0.3:
        _distractors(cv, rng, w, h, -1, 1)
    pid_map = np.where(owner > 0, (owner - 1) // 32, -1)
    anns = [a for pid, fig in enumerate(figures) if (a := _annotate(fig, pid, owner, pid_map, rng))]
    bank = _noise_bank(w, h)
    y0, x0 = int(rng.integers(0, bank.shape[1] - h + 1)), int(rng.integers(0, bank.shape[2] - w + 1))
    noise = bank[int(rng.integers(len(bank))), y0 : y0 + h, x0 : x0 + w]
    image = cv2.add(image, cv2.merge([noise, noise, noise]), dtype=cv2.CV_8U)
    if rng.random() < 0.25:
        image = cv2.GaussianBlur(image, (3, 3), 0)
    return image, anns


@functools.lru_cache(maxsize=4)
def _noise_bank(w: int, h: int) -> np.ndarray:
    """Fixed pixel-noise textures (sigma 2..8) that images crop at random offsets (fast, seeded)."""
    unit = np.random.default_rng(20240611).standard_normal((h + 64, w + 64))
    return np.stack([np.round(unit * s) for s in (2, 3.5, 5, 6.5, 8)]).astype(np.int16)


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, separators=(",", ":")))
    os.replace(tmp, path)


def _generate_split(
    root: Path,
    split: str,
    count: int,
    size: tuple[int, int],
    persons: tuple[int, int],
    seed: int,
    jpeg_quality: int,
    progress: bool,
) -> dict:
    image_dir = root / "images" / split
    image_dir.mkdir(parents=True, exist_ok=True)
    for stale in image_dir.glob("[0-9]" * 12 + ".jpg"):
        stale.unlink()
    offset = 0 if split == "train" else VAL_ID_OFFSET
    images, annotations = [], []
    for index in tqdm(range(count), desc=f"synthetic {split}", disable=not progress, unit="img"):
        rng = np.random.default_rng([seed, SPLITS[split], index])
        image, anns = render_image(rng, size, persons)
        image_id = offset + index + 1
        file_name = f"{image_id:012d}.jpg"
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if not ok:
            raise RuntimeError(f"could not encode {image_dir / file_name}")
        (image_dir / file_name).write_bytes(buf.tobytes())
        images.append({"id": image_id, "file_name": file_name, "width": size[0], "height": size[1]})
        for j, ann in enumerate(anns):
            annotations.append({"id": image_id * 100 + j + 1, "image_id": image_id, **ann})
    payload = {
        "info": {"description": "HRNet synthetic COCO-format person keypoints", "version": "1.0",
                 "year": 2024, "contributor": "hrnet.data.synthetic_coco", "seed": seed},
        "licenses": [{"id": 1, "name": "CC0 1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}],
        "images": images,
        "annotations": annotations,
        "categories": [PERSON_CATEGORY],
    }  # fmt: skip
    ann_dir = root / "annotations"
    ann_dir.mkdir(parents=True, exist_ok=True)
    _write_json(ann_dir / f"person_keypoints_{split}.json", payload)
    return {
        "images": len(images),
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
) -> dict:
    """Write the synthetic dataset under ``root`` (COCO layout); returns per-split counts.

    ``image_size`` is (width, height); ``persons_per_image`` an inclusive (min, max) range.
    """
    if num_train_images < 0 or num_val_images < 0:
        raise InputError("image counts must be >= 0")
    lo, hi = persons_per_image
    if not 0 <= lo <= hi:
        raise InputError(f"persons_per_image must be 0 <= min <= max, got {persons_per_image}")
    if min(image_size) < 32:
        raise InputError(f"image_size must be at least 32x32, got {image_size}")
    root = Path(root)
    size = (int(image_size[0]), int(image_size[1]))
    summary: dict = {"root": str(root), "seed": seed, "image_size": list(size)}
    for split, count in (("train", num_train_images), ("val", num_val_images)):
        summary[split] = _generate_split(root, split, count, size, (lo, hi), seed, jpeg_quality, progress)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--num-train", type=int, default=2000)
    parser.add_argument("--num-val", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--min-persons", type=int, default=1)
    parser.add_argument("--max-persons", type=int, default=4)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    summary = generate_coco_keypoints(
        args.root, args.num_train, args.num_val, (args.width, args.height),
        (args.min_persons, args.max_persons), args.seed, progress=not args.no_progress,
    )  # fmt: skip
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
