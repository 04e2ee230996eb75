"""Embedded default segmentation data: synthetic street scenes in the Cityscapes file layout.

Each scene is a pinhole street view: sky gradient with clouds, a skyline of building blocks and
perspective side facades with window grids, a road (lane marks) between sidewalks (tiles, curb)
with terrain or facades beyond, walls and fences along them, trees, poles carrying traffic signs
or lights, cars, trucks, buses, trams, motorcycles and bicycles (ridden or parked) and people on
the sidewalks, sized by their distance; an ego-vehicle hood and a black border use ids that map
to ignore. Class colours are drawn per image from class-specific ranges and every class has its
own texture, so colour alone does not separate the classes. Labels carry real Cityscapes label
ids, every one of the 19 evaluated classes (road 7, sidewalk 8, building 11, wall 12, fence 13,
pole 17, traffic light 19, traffic sign 20, vegetation 21, terrain 22, sky 23, person 24, rider
25, car 26, truck 27, bus 28, train 31, motorcycle 32, bicycle 33) plus void (ego vehicle 1,
unlabeled 0). Output is byte-identical for a given seed (one ``numpy`` Generator per image).

``python -m hrnet.data.synthetic_cityscapes --root DIR --num-train N --num-val M --seed S``
"""

from __future__ import annotations

import argparse
import colorsys
import functools
import json
from pathlib import Path

import cv2
import numpy as np

from hrnet.data.cityscapes import IMAGE_SUFFIX, LABEL_SUFFIX
from hrnet.errors import InputError
from hrnet.io import atomic_path

CITIES = {"train": ("synthville", "pixelburg"), "val": ("renderstadt",)}
SPLIT_KEYS = {"train": 0, "val": 1}
UNLABELED, EGO, ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE = 0, 1, 7, 8, 11, 12, 13, 17
LIGHT, SIGN, VEGETATION, TERRAIN, SKY, PERSON, RIDER, CAR = 19, 20, 21, 22, 23, 24, 25, 26
TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE = 27, 28, 31, 32, 33
# Per-label texture amplitudes: (fine grain, blotches); ids not listed stay flat.
TEXTURE = {ROAD: (0.10, 0.06), SIDEWALK: (0.06, 0.04), BUILDING: (0.05, 0.10), WALL: (0.12, 0.08),
           FENCE: (0.03, 0.0), POLE: (0.03, 0.0), LIGHT: (0.02, 0.0), SIGN: (0.02, 0.0),
           VEGETATION: (0.18, 0.45), TERRAIN: (0.30, 0.15), SKY: (0.01, 0.04), PERSON: (0.04, 0.05),
           RIDER: (0.04, 0.05), CAR: (0.03, 0.03), TRUCK: (0.04, 0.06), BUS: (0.02, 0.03),
           TRAIN: (0.02, 0.02), MOTORCYCLE: (0.03, 0.02), BICYCLE: (0.02, 0.0),
           EGO: (0.03, 0.05)}  # fmt: skip

Color = tuple[int, int, int]


def _hsv(h: float, s: float, v: float) -> Color:
    """BGR colour from hue in degrees and saturation/value in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb((h / 360.0) % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return int(b * 255), int(g * 255), int(r * 255)


def _shade(color: Color, f: float) -> Color:
    return tuple(int(min(255, max(0, c * f))) for c in color)  # type: ignore[return-value]


class _Canvas:
    """Draws every shape into the BGR image and the label-id map with identical rasterisation."""

    def __init__(self, w: int, h: int) -> None:
        self.image = np.zeros((h, w, 3), np.uint8)
        self.label = np.zeros((h, w), np.uint8)

    def poly(self, pts, color: Color, label: int | None) -> None:
        p = np.round(np.asarray(pts, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(self.image, [p], color)
        if label is not None:
            cv2.fillPoly(self.label, [p], label)

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: Color, label: int | None) -> None:
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], color, label)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, color: Color, label: int | None) -> None:
        c, axes = (round(cx), round(cy)), (max(1, round(rx)), max(1, round(ry)))
        cv2.ellipse(self.image, c, axes, 0, 0, 360, color, -1)
        if label is not None:
            cv2.ellipse(self.label, c, axes, 0, 0, 360, label, -1)


class _Scene:
    """Camera and street geometry: ``dy`` rows below the horizon is ``dy / cam_h`` pixels per metre."""

    def __init__(self, rng: np.random.Generator, w: int, h: int) -> None:
        self.rng, self.w, self.h = rng, w, h
        self.hz = h * rng.uniform(0.36, 0.5)
        self.vpx = w * rng.uniform(0.35, 0.65)
        self.cam_h = rng.uniform(1.3, 1.8)
        self.road_half = rng.uniform(3.0, 5.5)  # metres
        self.walk = (rng.uniform(2.0, 4.0), rng.uniform(2.0, 4.0))  # left/right sidewalk widths

    def ppm(self, y: float) -> float:
        """Pixels per metre for an object standing on the ground at image row ``y``."""
        return max(y - self.hz, 0.0) / self.cam_h

    def ground_x(self, y: float, lateral: float) -> float:
        """Image column of a ground point ``lateral`` metres right of the camera at row ``y``."""
        return self.vpx + lateral * self.ppm(y)

    def ground_y(self, x: float, lateral: float) -> float:
        """Row where the ground line at ``lateral`` metres passes column ``x`` (lateral != 0)."""
        return self.hz + (x - self.vpx) * self.cam_h / lateral


def _sky(cv: _Canvas, sc: _Scene) -> None:
    rng, w, hz = sc.rng, sc.w, int(np.ceil(sc.hz)) + 1
    if rng.random() < 0.75:
        hue, sat = rng.uniform(195, 222), rng.uniform(0.25, 0.7)
    else:  # overcast
        hue, sat = rng.uniform(180, 240), rng.uniform(0.0, 0.12)
    top = np.array(_hsv(hue, sat, rng.uniform(0.55, 0.85)), np.float32)
    bottom = np.array(_hsv(hue, sat * 0.4, rng.uniform(0.8, 1.0)), np.float32)
    t = np.linspace(0.0, 1.0, hz, dtype=np.float32)[:, None]
    cv.image[:hz] = ((1 - t) * top + t * bottom)[:, None, :].astype(np.uint8)
    cv.label[:hz] = SKY
    for _ in range(rng.integers(0, 4)):
        cloud = _shade(_hsv(hue, sat * 0.2, 1.0), rng.uniform(0.9, 1.0))
        cx, cy = rng.uniform(0, w), rng.uniform(0, sc.hz * 0.6)
        for _ in range(rng.integers(3, 7)):
            cv.ellipse(cx + rng.normal(0, 0.04 * w), cy + rng.normal(0, 0.02 * w),
                       rng.uniform(0.02, 0.06) * w, rng.uniform(0.01, 0.03) * w, cloud, SKY)  # fmt: skip


def _building_color(rng: np.random.Generator) -> Color:
    return _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.35), rng.uniform(0.3, 0.8))


def _window_color(rng: np.random.Generator, wall: Color) -> Color:
    if rng.random() < 0.5:
        return _shade(wall, rng.uniform(0.35, 0.6))
    return _hsv(rng.uniform(190, 230), rng.uniform(0.1, 0.4), rng.uniform(0.3, 0.6))


def _skyline(cv: _Canvas, sc: _Scene) -> None:
    rng, w = sc.rng, sc.w
    x = rng.uniform(-0.1, 0.0) * w
    while x < w:
        bw = rng.uniform(0.06, 0.2) * w
        if rng.random() < 0.85:
            top = sc.hz - rng.uniform(0.15, 0.85) * sc.hz
            wall = _building_color(rng)
            cv.rect(x, top, x + bw, sc.hz + 2, wall, BUILDING)
            win, step = _window_color(rng, wall), rng.uniform(0.012, 0.025) * w
            for wy in np.arange(top + step * 0.6, sc.hz - step * 0.5, step * 1.4):
                for wx in np.arange(x + step * 0.5, x + bw - step, step * 1.5):
                    cv.rect(wx, wy, wx + step * 0.7, wy + step * 0.8, win, BUILDING)
        x += bw + (rng.uniform(0.01, 0.08) * w if rng.random() < 0.3 else 0.0)


def _ground(cv: _Canvas, sc: _Scene) -> dict[int, int]:
    """Road, sidewalks and what lies beyond them; returns the far-side label per side (-1/+1)."""
    rng, w, h = sc.rng, sc.w, sc.h
    y0 = int(np.floor(sc.hz)) + 1
    ys, xs = np.mgrid[y0:h, 0:w].astype(np.float32)
    lateral = (xs - sc.vpx) / np.maximum(ys - sc.hz, 0.5) * sc.cam_h  # metres right of camera
    road_c = _hsv(rng.uniform(230, 300), rng.uniform(0.05, 0.25), rng.uniform(0.25, 0.5))
    walk_c = _hsv(rng.uniform(0, 360), rng.uniform(0.05, 0.35), rng.uniform(0.5, 0.8))
    terrain_c = _hsv(rng.uniform(55, 110), rng.uniform(0.3, 0.65), rng.uniform(0.4, 0.75))
    beyond = {s: TERRAIN if rng.random() < 0.55 else SIDEWALK for s in (-1, 1)}
    lab = np.full(lateral.shape, SIDEWALK, np.uint8)
    lab[np.abs(lateral) < sc.road_half] = ROAD
    img = np.empty(lateral.shape + (3,), np.uint8)
    img[...] = walk_c
    img[lab == ROAD] = road_c
    for side, width in ((-1, sc.walk[0]), (1, sc.walk[1])):
        far = side * lateral > sc.road_half + width
        if beyond[side] == TERRAIN:
            lab[far], img[far] = TERRAIN, terrain_c
    # sidewalk tiles: darker seams every ~1.5 m across and along the street
    depth = sc.cam_h / np.maximum(ys - sc.hz, 0.5) * 40.0
    seam = ((np.mod(depth, 1.5) < 0.12) | (np.mod(lateral, 1.5) < 0.08)) & (lab == SIDEWALK)
    img[seam] = _shade(walk_c, 0.8)
    curb = (np.abs(np.abs(lateral) - sc.road_half) < 0.15) & (lab == SIDEWALK)
    img[curb] = _shade(walk_c, 1.25)
    marks = (np.abs(lateral) < 0.1) & (np.mod(depth, 6.0) < 3.0) & (lab == ROAD)
    img[marks] = _hsv(rng.uniform(40, 60), rng.uniform(0.0, 0.8), 0.9)
    cv.image[y0:], cv.label[y0:] = img, lab
    return beyond


def _facade(cv: _Canvas, sc: _Scene, side: int) -> None:
    """A row of buildings along one sidewalk, from the image edge to a random far end."""
    rng, w = sc.rng, sc.w
    lat = side * (sc.road_half + sc.walk[0 if side < 0 else 1] + rng.uniform(0.0, 1.0))
    edge = 0.0 if side < 0 else float(w - 1)
    far = sc.vpx + side * rng.uniform(0.04, 0.25) * w
    height = rng.uniform(8.0, 25.0)

    def top(x: float) -> float:
        return sc.hz - (height - sc.cam_h) / sc.cam_h * (sc.ground_y(x, lat) - sc.hz)

    wall = _building_color(rng)
    cv.poly([(edge, top(edge)), (far, top(far)), (far, sc.ground_y(far, lat)),
             (edge, sc.ground_y(edge, lat))], wall, BUILDING)  # fmt: skip
    win = _window_color(rng, wall)
    floors = np.arange(rng.uniform(1.0, 2.0), height - 2.0, rng.uniform(3.0, 4.0))
    # window columns equally spaced in depth: depth is proportional to 1 / (row - horizon)
    d_near, d_far = 1.0 / (sc.ground_y(edge, lat) - sc.hz), 1.0 / (sc.ground_y(far, lat) - sc.hz)
    cols = np.linspace(d_near, d_far, int(rng.integers(5, 12)) * 2 + 1)
    for d0, d1 in zip(cols[0::2], cols[1::2], strict=False):
        x0, x1 = sc.vpx + lat / (sc.cam_h * d0), sc.vpx + lat / (sc.cam_h * d1)
        for fl in floors:
            ys = [sc.hz - (fl + dz - sc.cam_h) / sc.cam_h * (1.0 / d) for d, dz in
                  ((d0, 0.0), (d1, 0.0), (d1, 1.5), (d0, 1.5))]  # fmt: skip
            cv.poly([(x0, ys[0]), (x1, ys[1]), (x1, ys[2]), (x0, ys[3])], win, BUILDING)


def _barrier(cv: _Canvas, sc: _Scene, side: int) -> None:
    """A wall (solid, capped) or a fence (rails and posts) along the far edge of one sidewalk."""
    rng, w = sc.rng, sc.w
    lat = side * (sc.road_half + sc.walk[0 if side < 0 else 1] - 0.1)
    edge = 0.0 if side < 0 else float(w - 1)
    far = sc.vpx + side * rng.uniform(0.03, 0.2) * w

    def at(x: float, height: float) -> tuple[float, float]:
        gy = sc.ground_y(x, lat)
        return x, sc.hz - (height - sc.cam_h) / sc.cam_h * (gy - sc.hz)

    if rng.random() < 0.5:
        height = rng.uniform(0.8, 2.2)
        stone = _hsv(rng.uniform(20, 50), rng.uniform(0.05, 0.3), rng.uniform(0.45, 0.8))
        cv.poly([at(edge, height), at(far, height), at(far, 0.0), at(edge, 0.0)], stone, WALL)
        cap = height - 0.15
        cv.poly([at(edge, height), at(far, height), at(far, cap), at(edge, cap)], _shade(stone, 0.7), WALL)
        return
    height, metal = (
        rng.uniform(1.0, 1.8),
        _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.5), rng.uniform(0.15, 0.6)),
    )
    for rail in (0.25, height - 0.05):
        cv.poly([at(edge, rail + 0.1), at(far, rail + 0.1), at(far, rail), at(edge, rail)], metal, FENCE)
    d_near, d_far = 1.0 / (sc.ground_y(edge, lat) - sc.hz), 1.0 / (sc.ground_y(far, lat) - sc.hz)
    for d in np.linspace(d_near, d_far, int(rng.integers(8, 20))):
        x, ppm = sc.vpx + lat / (sc.cam_h * d), 1.0 / (sc.cam_h * d)
        half = max(0.05 * ppm, 0.6)
        cv.rect(x - half, at(x, height)[1], x + half, at(x, 0.0)[1], metal, FENCE)


def _tree(cv: _Canvas, sc: _Scene, x: float, y: float) -> None:
    rng, ppm = sc.rng, sc.ppm(y)
    if ppm < 0.3:
        return
    trunk_h, crown = rng.uniform(2.0, 4.0) * ppm, rng.uniform(1.5, 3.0) * ppm
    green = _hsv(rng.uniform(70, 140), rng.uniform(0.4, 0.85), rng.uniform(0.2, 0.55))
    cv.rect(x - 0.15 * ppm, y - trunk_h - crown * 0.5, x + 0.15 * ppm, y,
            _hsv(rng.uniform(15, 35), 0.5, rng.uniform(0.2, 0.4)), VEGETATION)  # fmt: skip
    cy = y - trunk_h - crown
    for _ in range(rng.integers(4, 9)):
        r = crown * rng.uniform(0.45, 0.8)
        cv.ellipse(x + rng.normal(0, 0.45) * crown, cy + rng.normal(0, 0.35) * crown, r, r * 0.9,
                   _shade(green, rng.uniform(0.8, 1.2)), VEGETATION)  # fmt: skip


def _hedge(cv: _Canvas, sc: _Scene, x: float, y: float) -> None:
    rng, ppm = sc.rng, sc.ppm(y)
    green = _hsv(rng.uniform(80, 150), rng.uniform(0.4, 0.8), rng.uniform(0.2, 0.5))
    length = rng.uniform(2.0, 5.0) * ppm
    for k in range(int(rng.integers(3, 7))):
        cv.ellipse(
            x + k * length / 5, y - 0.5 * ppm, length / 4, rng.uniform(0.5, 1.0) * ppm, green, VEGETATION
        )


def _pole(cv: _Canvas, sc: _Scene, x: float, y: float) -> None:
    rng, ppm = sc.rng, sc.ppm(y)
    height, half = rng.uniform(3.0, 5.0) * ppm, max(rng.uniform(0.1, 0.18) * ppm, 1.0)
    cv.rect(x - half, y - height, x + half, y, _hsv(0, 0, rng.uniform(0.25, 0.6)), POLE)
    if rng.random() < 0.35:  # traffic light: dark housing, three lamps, one lit
        hw, hh = rng.uniform(0.18, 0.25) * ppm, rng.uniform(0.8, 1.0) * ppm
        top = y - height - rng.uniform(0.0, 0.3) * ppm
        housing = _hsv(rng.uniform(40, 60), rng.uniform(0.0, 0.6), rng.uniform(0.05, 0.25))
        cv.rect(x - hw, top, x + hw, top + hh, housing, LIGHT)
        lit = int(rng.integers(3))
        for k, hue in enumerate((0, 40, 140)):
            cv.ellipse(x, top + hh * (0.18 + 0.32 * k), hw * 0.6, hw * 0.6,
                       _hsv(hue, 0.9, 0.95 if k == lit else 0.3), LIGHT)  # fmt: skip
    elif rng.random() < 0.7:
        r = rng.uniform(0.4, 0.6) * ppm
        cy = y - height + r
        kind = int(rng.integers(3))
        color = (_hsv(rng.uniform(45, 60), 0.9, 0.9), _hsv(0, 0.85, 0.85), _hsv(215, 0.85, 0.75))[kind]
        if kind == 0:
            cv.poly([(x - r, cy + r), (x + r, cy + r), (x, cy - r)], color, SIGN)
        elif kind == 1:
            cv.ellipse(x, cy, r, r, color, SIGN)
            cv.ellipse(x, cy, r * 0.65, r * 0.65, _hsv(0, 0, 0.95), SIGN)
        else:
            cv.rect(x - r, cy - r * 0.8, x + r, cy + r * 0.8, color, SIGN)


def _car(cv: _Canvas, sc: _Scene, x: float, y: float) -> None:
    rng, ppm = sc.rng, sc.ppm(y)
    if rng.random() < 0.35:
        body = _hsv(0, 0, rng.choice([0.1, 0.5, 0.75, 0.95]))
    else:
        body = _hsv(rng.uniform(0, 360), rng.uniform(0.5, 0.95), rng.uniform(0.35, 0.9))
    half, height = rng.uniform(0.85, 1.0) * ppm, rng.uniform(1.35, 1.7) * ppm
    belt = y - 0.55 * height
    cv.rect(x - half, belt, x + half, y - 0.12 * ppm, body, CAR)
    cv.poly([(x - half * 0.85, belt), (x + half * 0.85, belt), (x + half * 0.65, y - height),
             (x - half * 0.65, y - height)], body, CAR)  # fmt: skip
    glass = _hsv(rng.uniform(190, 230), 0.3, rng.uniform(0.15, 0.35))
    low, high = belt - 0.03 * ppm, y - height * 0.93
    cv.poly([(x - half * 0.75, low), (x + half * 0.75, low), (x + half * 0.6, high), (x - half * 0.6, high)],
            glass, CAR)  # fmt: skip
    for side in (-1, 1):
        cv.rect(x + side * half * 0.92, y - 0.3 * ppm, x + side * half * 0.6, y, (20, 20, 20), CAR)
        cv.rect(x + side * half * 0.9, belt + 0.1 * ppm, x + side * half * 0.65, belt + 0.25 * ppm,
                _hsv(rng.uniform(0, 20), 0.9, 0.9), CAR)  # fmt: skip


def _wheels(cv: _Canvas, x: float, y: float, half: float, ppm: float, label: int) -> None:
    for side in (-1, 1):
        cv.rect(x + side * half * 0.92, y - 0.35 * ppm, x + side * half * 0.6, y, (20, 20, 20), label)


def _truck(cv: _Canvas, sc: _Scene, x: float, y: float) -> None:
    """Rear view: a tall plain cargo box with door seams and a bumper; no rear window."""
    rng, ppm = sc.rng, sc.ppm(y)
    half, height = rng.uniform(1.15, 1.3) * ppm, rng.uniform(2.8, 3.6) * ppm
    box = _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.6), rng.uniform(0.5, 0.95))
    cv.rect(x - half, y - height, x + half, y - 0.3 * ppm, box, TRUCK)
    seam = _shade(box, 0.6)
    for fx in (-0.5, 0.0, 0.5):
        cv.rect(
            x + fx * half - 0.02 * ppm, y - height, x + fx * half + 0.02 * ppm, y - 0.35 * ppm, seam, TRUCK
        )
    cv.rect(x - half, y - 0.45 * ppm, x + half, y - 0.3 * ppm, (35, 35, 35), TRUCK)
    _wheels(cv, x, y, half, ppm, TRUCK)


def _bus(cv: _Canvas, sc: _Scene, x: float, y: float) -> None:
    """Rear view: a tall bright body, a wide rear window, a route display and lights."""
    rng, ppm = sc.rng, sc.ppm(y)
    half, height = rng.uniform(1.2, 1.3) * ppm, rng.uniform(2.9, 3.3) * ppm
    body = _hsv(
        rng.choice([0, 45, 120, 215]) + rng.uniform(-8, 8), rng.uniform(0.6, 0.95), rng.uniform(0.6, 0.9)
    )
    cv.rect(x - half, y - height, x + half, y - 0.25 * ppm, body, BUS)
    cv.rect(x - half * 0.85, y - height * 0.9, x + half * 0.85, y - height * 0.55,
            _hsv(rng.uniform(190, 230), 0.3, rng.uniform(0.1, 0.25)), BUS)  # fmt: skip
    cv.rect(x - half * 0.5, y - height * 0.97, x + half * 0.5, y - height * 0.91, _hsv(30, 0.9, 0.9), BUS)
    for side in (-1, 1):
        cv.rect(
            x + side * half * 0.9, y - 0.9 * ppm, x + side * half * 0.7, y - 0.6 * ppm, _hsv(5, 0.9, 0.9), BUS
        )
    _wheels(cv, x, y, half, ppm, BUS)


def _tram(cv: _Canvas, sc: _Scene, x: float, y: float) -> None:
    """Front view: a skirted body down to the rails, a big windscreen, a stripe and a pantograph."""
    rng, ppm = sc.rng, sc.ppm(y)
    half, height = rng.uniform(1.2, 1.35) * ppm, rng.uniform(3.2, 3.6) * ppm
    body = _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.25), rng.uniform(0.75, 0.95))
    cv.poly(
        [(x - half, y), (x + half, y), (x + half * 0.95, y - height), (x - half * 0.95, y - height)],
        body,
        TRAIN,
    )
    cv.rect(x - half * 0.8, y - height * 0.88, x + half * 0.8, y - height * 0.5,
            _hsv(rng.uniform(180, 220), 0.35, rng.uniform(0.15, 0.3)), TRAIN)  # fmt: skip
    cv.rect(x - half, y - height * 0.35, x + half, y - height * 0.25,
            _hsv(rng.uniform(0, 360), 0.85, rng.uniform(0.5, 0.85)), TRAIN)  # fmt: skip
    top = y - height
    for dx in (-1, 1):
        foot, head = x + dx * half * 0.5, top - 0.8 * ppm
        cv.poly([(foot, top), (foot + 0.06 * ppm, top), (x + 0.03 * ppm, head), (x - 0.03 * ppm, head)],
                (40, 40, 40), TRAIN)  # fmt: skip
    cv.rect(x - half * 0.6, top - 0.85 * ppm, x + half * 0.6, top - 0.75 * ppm, (40, 40, 40), TRAIN)


def _two_wheeler(cv: _Canvas, sc: _Scene, x: float, y: float, motor: bool, ridden: bool) -> None:
    """Side view: a motorcycle (filled wheels, tank and seat) or a bicycle (rings and a frame)."""
    rng, ppm = sc.rng, sc.ppm(y)
    d = 1.0 if rng.random() < 0.5 else -1.0
    r = (0.33 if motor else 0.35) * ppm
    gap = (0.75 if motor else 0.55) * ppm
    back, front, hub_y = x - d * gap, x + d * gap, y - r
    frame = _hsv(rng.uniform(0, 360), rng.uniform(0.4, 0.9), rng.uniform(0.3, 0.9))
    label = MOTORCYCLE if motor else BICYCLE
    thick = max(0.07 * ppm, 0.6)
    for hub in (back, front):
        cv.ellipse(hub, hub_y, r, r, (25, 25, 25), label)
        if not motor:
            cv.ellipse(
                hub, hub_y, max(r - thick, 0.5), max(r - thick, 0.5), _hsv(0, 0, rng.uniform(0.4, 0.7)), None
            )
    seat_y = hub_y - (0.55 if motor else 0.6) * ppm
    if motor:
        cv.poly([(back, hub_y - 0.1 * ppm), (front, hub_y - 0.1 * ppm), (x + d * 0.4 * ppm, seat_y),
                 (back, seat_y)], frame, label)  # fmt: skip
        cv.rect(x - 0.25 * ppm, hub_y - 0.25 * ppm, x + 0.25 * ppm, hub_y + 0.05 * ppm, (60, 60, 60), label)
    else:
        seat, bar = (x - d * 0.1 * ppm, seat_y), (front - d * 0.1 * ppm, seat_y)
        tubes = (((back, hub_y), (x, hub_y)), ((x, hub_y), seat), ((back, hub_y), seat), ((x, hub_y), bar),
                 ((front, hub_y), (bar[0], seat_y - 0.1 * ppm)))  # fmt: skip
        for a, b in tubes:
            _bar(cv, a, b, thick, frame, label)
    if ridden:
        _rider(cv, sc, x - d * 0.1 * ppm, seat_y, front - d * 0.1 * ppm, ppm)


def _bar(
    cv: _Canvas, a: tuple[float, float], b: tuple[float, float], thick: float, color: Color, label: int
) -> None:
    (ax, ay), (bx, by) = a, b
    length = max(np.hypot(bx - ax, by - ay), 1e-6)
    nx, ny = -(by - ay) / length * thick / 2, (bx - ax) / length * thick / 2
    cv.poly([(ax + nx, ay + ny), (bx + nx, by + ny), (bx - nx, by - ny), (ax - nx, ay - ny)], color, label)


def _rider(cv: _Canvas, sc: _Scene, x: float, seat: float, hands_x: float, ppm: float) -> None:
    """A seated person: leg down to the pedal, torso leaning to the handlebar, head (helmet or hair)."""
    rng = sc.rng
    shirt = _hsv(rng.uniform(0, 360), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.9))
    pants = _hsv(rng.uniform(200, 240), rng.uniform(0.0, 0.6), rng.uniform(0.1, 0.5))
    shoulder = (x + (hands_x - x) * 0.3, seat - 0.6 * ppm)
    _bar(cv, (x, seat), (x + (hands_x - x) * 0.2, seat + 0.5 * ppm), 0.14 * ppm, pants, RIDER)
    _bar(cv, (x, seat), shoulder, 0.3 * ppm, shirt, RIDER)
    _bar(cv, shoulder, (hands_x, seat - 0.15 * ppm), 0.09 * ppm, shirt, RIDER)
    head = (
        _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.8), rng.uniform(0.1, 0.9))
        if rng.random() < 0.6
        else _hsv(rng.uniform(15, 35), rng.uniform(0.3, 0.6), rng.uniform(0.4, 0.95))
    )
    cv.ellipse(shoulder[0], shoulder[1] - 0.15 * ppm, 0.11 * ppm, 0.13 * ppm, head, RIDER)


def _person(cv: _Canvas, sc: _Scene, x: float, y: float) -> None:
    rng, ppm = sc.rng, sc.ppm(y)
    height = rng.uniform(1.55, 1.9) * ppm
    shirt = _hsv(rng.uniform(0, 360), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.9))
    pants = _hsv(rng.uniform(200, 240), rng.uniform(0.0, 0.6), rng.uniform(0.1, 0.5))
    skin = _hsv(rng.uniform(15, 35), rng.uniform(0.3, 0.6), rng.uniform(0.4, 0.95))
    hip, shoulder, half = y - 0.48 * height, y - 0.82 * height, 0.13 * height
    stride = rng.uniform(-0.08, 0.08) * height
    for dx in (-1, 1):
        inner, outer = x + dx * half * 0.15, x + dx * half * 0.85
        cv.poly(
            [(inner, hip), (outer, hip), (outer + dx * stride, y), (inner + dx * stride, y)], pants, PERSON
        )
        cv.rect(x + dx * half, shoulder, x + dx * half * 1.35, hip + 0.05 * height, shirt, PERSON)
    cv.rect(x - half, shoulder, x + half, hip + 0.02 * height, shirt, PERSON)
    r = 0.065 * height
    cv.ellipse(x, shoulder - r * 1.1, r * 0.85, r, skin, PERSON)
    if rng.random() < 0.8:
        cv.ellipse(x, shoulder - r * 1.5, r * 0.85, r * 0.55, _hsv(30, 0.5, rng.uniform(0.05, 0.4)), PERSON)


def _ego_and_border(cv: _Canvas, sc: _Scene) -> None:
    rng, w, h = sc.rng, sc.w, sc.h
    if rng.random() < 0.7:
        top, dark = (
            h * (1.0 - rng.uniform(0.05, 0.12)),
            _hsv(rng.uniform(0, 360), 0.2, rng.uniform(0.05, 0.25)),
        )
        xs = np.linspace(0, w - 1, 17)
        bulge = top + (h - top) * 0.6 * ((xs - w / 2) / (w / 2)) ** 2
        cv.poly(list(zip(xs, bulge, strict=True)) + [(w - 1, h), (0, h)], dark, EGO)
    if rng.random() < 0.3:
        b = int(rng.integers(2, 6))
        for region in ((slice(None), slice(0, b)), (slice(None), slice(w - b, w))):
            cv.image[region], cv.label[region] = 0, UNLABELED


def _objects(cv: _Canvas, sc: _Scene, beyond: dict[int, int]) -> None:
    """Trees, poles, cars and people, drawn far to near so nearer ones occlude."""
    rng, h = sc.rng, sc.h
    items: list[tuple[float, int, float]] = []  # (row, kind, lateral metres)

    def row() -> float:  # rows biased towards the distance, where the ground is denser in metres
        return sc.hz + (h - sc.hz) * rng.uniform(0.08, 1.0) ** 1.5

    for _ in range(rng.integers(1, 5)):  # trees and hedges beyond the sidewalk
        side = int(rng.choice([-1, 1]))
        lat = side * (sc.road_half + sc.walk[0 if side < 0 else 1] + rng.uniform(0.3, 2.5))
        items.append((row(), 0 if beyond[side] != TERRAIN or rng.random() < 0.7 else 1, lat))
    for _ in range(rng.integers(1, 5)):  # poles at the curb
        side = int(rng.choice([-1, 1]))
        items.append((row(), 2, side * (sc.road_half + rng.uniform(0.3, 0.8))))

    def far_row() -> float:  # trucks, buses and trams nearer than this would fill the frame
        return sc.hz + (h - sc.hz) * rng.uniform(0.08, 0.65) ** 1.5

    for _ in range(rng.integers(1, 6)):  # vehicles in the lanes: car, truck, bus, motorcycle, bicycle
        kind = int(rng.choice([3, 5, 6, 7, 8], p=[0.5, 0.14, 0.14, 0.11, 0.11]))
        y = far_row() if kind in (5, 6) else row()
        items.append((y, kind, rng.uniform(-sc.road_half + 1.0, sc.road_half - 1.0)))
    if rng.random() < 0.35:  # a tram in the middle of the road
        items.append((far_row(), 9, rng.uniform(-0.5, 0.5)))
    if rng.random() < 0.4:  # parked bicycles on the sidewalk
        side = int(rng.choice([-1, 1]))
        width = sc.walk[0 if side < 0 else 1]
        items.append((row(), 10, side * (sc.road_half + rng.uniform(0.4, width))))
    for _ in range(rng.integers(1, 7)):  # people on the sidewalks, not too far away
        side = int(rng.choice([-1, 1]))
        width = sc.walk[0 if side < 0 else 1]
        items.append(
            (sc.hz + (h - sc.hz) * rng.uniform(0.25, 0.9), 4, side * (sc.road_half + rng.uniform(0.5, width)))
        )
    draw = (_tree, _hedge, _pole, _car, _person, _truck, _bus,
            lambda c, s, x, y: _two_wheeler(c, s, x, y, motor=True, ridden=s.rng.random() < 0.8),
            lambda c, s, x, y: _two_wheeler(c, s, x, y, motor=False, ridden=True), _tram,
            lambda c, s, x, y: _two_wheeler(c, s, x, y, motor=False, ridden=False))  # fmt: skip
    for y, kind, lat in sorted(items):
        draw[kind](cv, sc, sc.ground_x(y, lat), y)


@functools.lru_cache(maxsize=4)
def _noise_bank(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed fine-grain and blotch textures (zero mean, unit-ish scale) cropped at random offsets."""
    gen = np.random.default_rng(12345)
    fine = gen.standard_normal((h + 64, w + 64)).astype(np.float32)
    small = gen.standard_normal(((h + 64) // 6 + 1, (w + 64) // 6 + 1)).astype(np.float32)
    blotch = cv2.resize(small, (w + 64, h + 64), interpolation=cv2.INTER_CUBIC)
    return fine, blotch / max(float(blotch.std()), 1e-6)


def _texture(cv: _Canvas, rng: np.random.Generator) -> np.ndarray:
    h, w = cv.label.shape
    fine_bank, blotch_bank = _noise_bank(w, h)
    amp_fine, amp_blotch = np.zeros(256, np.float32), np.zeros(256, np.float32)
    for lid, (a, b) in TEXTURE.items():
        amp_fine[lid], amp_blotch[lid] = a, b
    oy, ox = int(rng.integers(0, 64)), int(rng.integers(0, 64))
    fine, blotch = (
        fine_bank[oy : oy + h, ox : ox + w],
        blotch_bank[64 - oy : 64 - oy + h, 64 - ox : 64 - ox + w],
    )
    gain = 1.0 + amp_fine[cv.label] * fine + amp_blotch[cv.label] * blotch
    gain *= rng.uniform(0.75, 1.2)  # exposure
    out = cv.image.astype(np.float32) * gain[..., None] + rng.normal(0, 3.0)
    out += fine[::-1, ::-1, None] * rng.uniform(1.0, 5.0)  # sensor noise
    image = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        image = cv2.GaussianBlur(image, (3, 3), 0)
    return image


def render_scene(
    rng: np.random.Generator, size: tuple[int, int] = (512, 256)
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic street scene: ``(image BGR uint8 (H, W, 3), label ids uint8 (H, W))``."""
    w, h = size
    cv, sc = _Canvas(w, h), _Scene(rng, w, h)
    _sky(cv, sc)
    _skyline(cv, sc)
    beyond = _ground(cv, sc)
    for side in (-1, 1):
        if beyond[side] == SIDEWALK and rng.random() < 0.8:
            _facade(cv, sc, side)
        if rng.random() < 0.45:
            _barrier(cv, sc, side)
    _objects(cv, sc, beyond)
    _ego_and_border(cv, sc)
    return _texture(cv, rng), cv.label


def _write_png(path: Path, array: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"{path}: could not encode PNG")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def generate_cityscapes(
    root: str | Path,
    num_train: int,
    num_val: int,
    image_size: tuple[int, int] = (512, 256),
    seed: int = 0,
) -> dict:
    """Write ``num_train``/``num_val`` scenes under ``root`` in the Cityscapes layout.

    ``image_size`` is (width, height). Returns a summary (counts, cities, label-id pixel counts).
    """
    if num_train < 0 or num_val < 0:
        raise InputError(f"image counts must be >= 0, got {num_train}, {num_val}")
    if min(image_size) < 16:
        raise InputError(f"image_size must be at least 16x16, got {image_size}")
    root, size = Path(root), (int(image_size[0]), int(image_size[1]))
    summary: dict = {"root": str(root), "seed": seed, "image_size": list(size)}
    for split, count in (("train", num_train), ("val", num_val)):
        counts = np.zeros(256, np.int64)
        cities = CITIES[split]
        for index in range(count):
            rng = np.random.default_rng([seed, SPLIT_KEYS[split], index])
            image, label = render_scene(rng, size)
            city = cities[index % len(cities)]
            stem = f"{city}_{index // len(cities):06d}_{19:06d}"
            _write_png(root / "leftImg8bit" / split / city / f"{stem}{IMAGE_SUFFIX}", image)
            _write_png(root / "gtFine" / split / city / f"{stem}{LABEL_SUFFIX}", label)
            counts += np.bincount(label.ravel(), minlength=256)
        summary[split] = {
            "images": count,
            "cities": list(cities),
            "label_id_fractions": {
                int(i): round(float(counts[i]) / max(int(counts.sum()), 1), 4) for i in np.flatnonzero(counts)
            },
        }
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--num-train", type=int, default=300)
    parser.add_argument("--num-val", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=256)
    args = parser.parse_args(argv)
    summary = generate_cityscapes(
        args.root, args.num_train, args.num_val, (args.width, args.height), args.seed
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
