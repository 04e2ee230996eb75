"""Synthetic people for the COCO keypoint generator: body sampling, colours, drawing, placement.

A figure is sampled in a local frame (pelvis at the origin, y up), placed and rotated into the
image, then drawn part by part on a ``SubpixelCanvas`` whose mask value is
``person * 32 + part + 1``, so that visibility can be read back per joint.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hrnet.data.synthetic.canvas import SubpixelCanvas, hsv_bgr, shade

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


def unit(deg: float) -> np.ndarray:
    rad = np.deg2rad(deg)
    return np.array([np.sin(rad), np.cos(rad)])  # local frame: x right, y up


def sample_figure(rng: np.random.Generator, height: float) -> dict:
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
    spine, lateral = unit(lean), unit(lean + 90)
    kp = np.zeros((len(JOINT_PARTS), 2))  # COCO's 17 joints; skeletons.py annotates other sets
    mid_sh = spine * d["torso"]
    half_sh = lateral * s_left * d["sh_w"] / 2 * yaw
    half_hip = lateral * s_left * d["hip_w"] / 2 * yaw
    kp[5], kp[6], kp[11], kp[12] = mid_sh + half_sh, mid_sh - half_sh, half_hip, -half_hip

    head_deg = lean + rng.normal(0, 10)
    head_up, head_lat = unit(head_deg), unit(head_deg + 90)
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
        return unit(base_deg + 180 - side * angle)  # angle 0 = straight down, >0 = outward

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


def palette(rng: np.random.Generator) -> dict:
    j = rng.uniform
    bright = j(0.7, 1.12)
    torso_h = [j(80, 165), j(265, 325), j(0, 360)][int(rng.integers(3))]
    torso_s = j(0.05, 0.18) if rng.random() < 0.25 else j(0.35, 0.8)
    left_arm = hsv_bgr(j(205, 228), j(0.55, 0.9), j(0.65, 0.9) * bright)
    right_arm = hsv_bgr(j(15, 35), j(0.6, 0.9), j(0.75, 0.95) * bright)
    leg_v = j(0.55, 0.8)
    return {
        "left": left_arm, "right": right_arm,
        "left_leg": shade(left_arm, leg_v), "right_leg": shade(right_arm, leg_v),
        "torso": hsv_bgr(torso_h, torso_s, j(0.45, 0.9) * bright),
        "skin": hsv_bgr(j(18, 32), j(0.25, 0.55), j(0.4, 0.95)),
        "hair": hsv_bgr(j(15, 40), j(0.3, 0.8), j(0.08, 0.35)),
        "joint": j(0.55, 0.7),
    }  # fmt: skip


def _rot(v: np.ndarray, deg: float) -> np.ndarray:
    rad = np.deg2rad(deg)
    c, s = np.cos(rad), np.sin(rad)
    return np.array([v[0] * c + v[1] * s, -v[0] * s + v[1] * c])


def draw_figure(
    cv: SubpixelCanvas, fig: dict, to_img, pal: dict, label0: int, rng: np.random.Generator
) -> None:
    """Legs, (arms behind), torso, neck, head, ears, face, arms, shoulder discs - in that order."""
    kp, d, jf = fig["kp"], fig["dims"], pal["joint"]
    P = to_img
    legs = [(11, 13, 15, 0, pal["left_leg"], (THIGH_L, SHIN_L, FOOT_L)),
            (12, 14, 16, 1, pal["right_leg"], (THIGH_R, SHIN_R, FOOT_R))]  # fmt: skip
    if rng.random() < 0.5:
        legs.reverse()
    for hip, knee, ankle, side, color, (p_up, p_lo, p_end) in legs:
        cv.line(P(kp[hip]), P(kp[knee]), d["t_thigh"], color, label0 + p_up)
        cv.line(P(kp[knee]), P(kp[ankle]), d["t_shin"], color, label0 + p_lo)
        cv.disc(P(kp[knee]), d["t_thigh"] * 0.42, shade(color, jf), label0 + p_lo)
        cv.line(P(kp[ankle]), P(fig["feet"][side]), d["t_shin"] * 0.75, shade(color, 0.45), label0 + p_end)
        cv.disc(P(kp[ankle]), d["t_shin"] * 0.45, shade(color, jf), label0 + p_lo)

    arms = [(5, 7, 9, pal["left"], (UARM_L, FARM_L, HAND_L)),
            (6, 8, 10, pal["right"], (UARM_R, FARM_R, HAND_R))]  # fmt: skip
    if rng.random() < 0.5:
        arms.reverse()
    behind = [rng.random() < 0.15 for _ in arms]

    def draw_arm(arm: tuple) -> None:
        sh, el, wr, color, (p_up, p_lo, p_end) = arm
        cv.line(P(kp[sh]), P(kp[el]), d["t_uarm"], color, label0 + p_up)
        cv.line(P(kp[el]), P(kp[wr]), d["t_farm"], color, label0 + p_lo)
        cv.disc(P(kp[el]), d["t_uarm"] * 0.45, shade(color, jf), label0 + p_lo)
        along = (kp[wr] - kp[el]) / (np.linalg.norm(kp[wr] - kp[el]) + 1e-6)
        cv.disc(P(kp[wr] + along * d["hand_r"]), d["hand_r"], pal["skin"], label0 + p_end)
        cv.disc(P(kp[wr]), d["t_farm"] * 0.45, shade(color, jf), label0 + p_lo)
        cv.disc(P(kp[sh]), d["t_uarm"] * 0.42, shade(color, jf), label0 + p_up)

    for arm, back in zip(arms, behind, strict=True):
        if back:
            draw_arm(arm)
    lat, spine = fig["lateral"], fig["spine"]
    e = d["t_uarm"] * 0.45
    torso = [kp[11] + lat * e - spine * e, kp[5] + lat * e + spine * e * 0.5,
             kp[6] - lat * e + spine * e * 0.5, kp[12] - lat * e - spine * e]  # fmt: skip
    cv.poly([P(p) for p in torso], pal["torso"], label0 + TORSO)
    for hip in (11, 12):
        cv.disc(P(kp[hip]), d["t_thigh"] * 0.4, shade(pal["torso"], jf), label0 + TORSO)
    r, hc, up = d["head_r"], fig["head_c"], fig["head_up"]
    cv.line(P(fig["neck"]), P(hc), r * 0.8, pal["skin"], label0 + HEAD)
    if fig["front"]:
        collar = [fig["neck"] + lat * r * 0.9, fig["neck"] - lat * r * 0.9, fig["neck"] - spine * r * 1.3]
        cv.poly([P(p) for p in collar], shade(pal["torso"], 1.5), label0 + TORSO)
    cv.disc(P(hc), r, pal["skin"] if fig["front"] else pal["hair"], label0 + HEAD)
    if fig["front"] and fig["hair"]:
        cap = [hc + _rot(up, a) * r * 1.04 for a in range(-100, 101, 20)]
        cv.poly([P(p) for p in cap], pal["hair"], label0 + HEAD)
    for k, part, color in ((3, EAR_L, pal["left"]), (4, EAR_R, pal["right"])):
        cv.disc(P(kp[k]), r * 0.24, shade(color, 0.8), label0 + part)
    if fig["front"]:
        eye_r = max(0.6, r * 0.15)
        cv.disc(P(kp[1]), eye_r, shade(pal["left"], 0.35), label0 + FACE)
        cv.disc(P(kp[2]), eye_r, shade(pal["right"], 0.35), label0 + FACE)
        cv.disc(P(kp[0]), eye_r * 1.1, (40, 40, 190), label0 + FACE)
    for arm, back in zip(arms, behind, strict=True):
        if not back:
            draw_arm(arm)


def _to_image_fn(pelvis: np.ndarray, rot_deg: float) -> Callable[[np.ndarray], np.ndarray]:
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


def place_figures(rng: np.random.Generator, w: int, h: int, count: int) -> list[dict]:
    placed: list[dict] = []
    for _ in range(count):
        for _attempt in range(8):
            height = rng.uniform(0.4, 0.95) * h
            fig = sample_figure(rng, height)
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
                fig.update(box=box, to_img=_to_image_fn(pelvis, rot), palette=palette(rng))
                placed.append(fig)
                break
    return placed
