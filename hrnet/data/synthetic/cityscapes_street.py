"""The static street of a synthetic Cityscapes scene: camera, sky, skyline, ground, facades, walls
and fences, and the ego-vehicle hood. Labels are real Cityscapes label ids.
"""

from __future__ import annotations

import numpy as np

from hrnet.data.synthetic.canvas import Color, FlatCanvas, shade
from hrnet.data.synthetic.canvas import hsv_bgr as _hsv

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


class Scene:
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


def sky(cv: FlatCanvas, sc: Scene) -> None:
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
        cloud = shade(_hsv(hue, sat * 0.2, 1.0), rng.uniform(0.9, 1.0))
        cx, cy = rng.uniform(0, w), rng.uniform(0, sc.hz * 0.6)
        for _ in range(rng.integers(3, 7)):
            cv.ellipse(cx + rng.normal(0, 0.04 * w), cy + rng.normal(0, 0.02 * w),
                       rng.uniform(0.02, 0.06) * w, rng.uniform(0.01, 0.03) * w, cloud, SKY)  # fmt: skip


def _building_color(rng: np.random.Generator) -> Color:
    return _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.35), rng.uniform(0.3, 0.8))


def _window_color(rng: np.random.Generator, wall: Color) -> Color:
    if rng.random() < 0.5:
        return shade(wall, rng.uniform(0.35, 0.6))
    return _hsv(rng.uniform(190, 230), rng.uniform(0.1, 0.4), rng.uniform(0.3, 0.6))


def skyline(cv: FlatCanvas, sc: Scene) -> None:
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


def ground(cv: FlatCanvas, sc: Scene) -> dict[int, int]:
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
    img[seam] = shade(walk_c, 0.8)
    curb = (np.abs(np.abs(lateral) - sc.road_half) < 0.15) & (lab == SIDEWALK)
    img[curb] = shade(walk_c, 1.25)
    marks = (np.abs(lateral) < 0.1) & (np.mod(depth, 6.0) < 3.0) & (lab == ROAD)
    img[marks] = _hsv(rng.uniform(40, 60), rng.uniform(0.0, 0.8), 0.9)
    cv.image[y0:], cv.label[y0:] = img, lab
    return beyond


def facade(cv: FlatCanvas, sc: Scene, side: int) -> None:
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


def barrier(cv: FlatCanvas, sc: Scene, side: int) -> None:
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
        cv.poly([at(edge, height), at(far, height), at(far, cap), at(edge, cap)], shade(stone, 0.7), WALL)
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


def ego_and_border(cv: FlatCanvas, sc: Scene) -> None:
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
