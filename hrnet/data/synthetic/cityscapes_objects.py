"""Things in a synthetic Cityscapes street: vegetation, poles with signs and lights, vehicles,
riders and people, placed on the ground and drawn far to near so that nearer ones occlude.
"""

from __future__ import annotations

import numpy as np

from hrnet.data.synthetic.canvas import Color, FlatCanvas, shade
from hrnet.data.synthetic.canvas import hsv_bgr as _hsv
from hrnet.data.synthetic.cityscapes_street import (
    BICYCLE,
    BUS,
    CAR,
    LIGHT,
    MOTORCYCLE,
    PERSON,
    POLE,
    RIDER,
    SIGN,
    TERRAIN,
    TRAIN,
    TRUCK,
    VEGETATION,
    Scene,
)


def _tree(cv: FlatCanvas, sc: Scene, x: float, y: float) -> None:
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
                   shade(green, rng.uniform(0.8, 1.2)), VEGETATION)  # fmt: skip


def _hedge(cv: FlatCanvas, sc: Scene, x: float, y: float) -> None:
    rng, ppm = sc.rng, sc.ppm(y)
    green = _hsv(rng.uniform(80, 150), rng.uniform(0.4, 0.8), rng.uniform(0.2, 0.5))
    length = rng.uniform(2.0, 5.0) * ppm
    for k in range(int(rng.integers(3, 7))):
        cv.ellipse(
            x + k * length / 5, y - 0.5 * ppm, length / 4, rng.uniform(0.5, 1.0) * ppm, green, VEGETATION
        )


def _pole(cv: FlatCanvas, sc: Scene, x: float, y: float) -> None:
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


def _car(cv: FlatCanvas, sc: Scene, x: float, y: float) -> None:
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


def _wheels(cv: FlatCanvas, x: float, y: float, half: float, ppm: float, label: int) -> None:
    for side in (-1, 1):
        cv.rect(x + side * half * 0.92, y - 0.35 * ppm, x + side * half * 0.6, y, (20, 20, 20), label)


def _truck(cv: FlatCanvas, sc: Scene, x: float, y: float) -> None:
    """Rear view: a tall plain cargo box with door seams and a bumper; no rear window."""
    rng, ppm = sc.rng, sc.ppm(y)
    half, height = rng.uniform(1.15, 1.3) * ppm, rng.uniform(2.8, 3.6) * ppm
    box = _hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.6), rng.uniform(0.5, 0.95))
    cv.rect(x - half, y - height, x + half, y - 0.3 * ppm, box, TRUCK)
    seam = shade(box, 0.6)
    for fx in (-0.5, 0.0, 0.5):
        cv.rect(
            x + fx * half - 0.02 * ppm, y - height, x + fx * half + 0.02 * ppm, y - 0.35 * ppm, seam, TRUCK
        )
    cv.rect(x - half, y - 0.45 * ppm, x + half, y - 0.3 * ppm, (35, 35, 35), TRUCK)
    _wheels(cv, x, y, half, ppm, TRUCK)


def _bus(cv: FlatCanvas, sc: Scene, x: float, y: float) -> None:
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


def _tram(cv: FlatCanvas, sc: Scene, x: float, y: float) -> None:
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


def _two_wheeler(cv: FlatCanvas, sc: Scene, x: float, y: float, motor: bool, ridden: bool) -> None:
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
    cv: FlatCanvas, a: tuple[float, float], b: tuple[float, float], thick: float, color: Color, label: int
) -> None:
    (ax, ay), (bx, by) = a, b
    length = max(np.hypot(bx - ax, by - ay), 1e-6)
    nx, ny = -(by - ay) / length * thick / 2, (bx - ax) / length * thick / 2
    cv.poly([(ax + nx, ay + ny), (bx + nx, by + ny), (bx - nx, by - ny), (ax - nx, ay - ny)], color, label)


def _rider(cv: FlatCanvas, sc: Scene, x: float, seat: float, hands_x: float, ppm: float) -> None:
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


def _person(cv: FlatCanvas, sc: Scene, x: float, y: float) -> None:
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


def place_objects(cv: FlatCanvas, sc: Scene, beyond: dict[int, int]) -> None:
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
