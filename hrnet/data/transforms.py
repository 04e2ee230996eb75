"""Top-down crop geometry: box -> (center, scale), crop affines, point maps, flips, half-body.

Conventions follow the MSRA/HRNet reference recipe: ``scale`` is the crop size in units of
``pixel_std`` (200 px), pixel centres sit at integer coordinates (a horizontal flip maps
``x -> width - 1 - x``) and affines are (2, 3) matrices built from three point pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

PIXEL_STD = 200.0

ArrayLike = np.ndarray | Sequence[float]


def box_to_center_scale(
    bbox: ArrayLike, aspect_ratio: float, padding: float = 1.25, pixel_std: float = PIXEL_STD
) -> tuple[np.ndarray, np.ndarray]:
    """Center and scale of an ``[x, y, w, h]`` box, grown to ``aspect_ratio`` (w/h) then padded."""
    x, y, w, h = (float(v) for v in bbox[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / pixel_std, h / pixel_std], dtype=np.float32) * padding
    return center, scale


def _rotate(vec: np.ndarray, rad: float) -> np.ndarray:
    sn, cs = np.sin(rad), np.cos(rad)
    return np.array([vec[0] * cs - vec[1] * sn, vec[0] * sn + vec[1] * cs], dtype=np.float32)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def get_affine_transform(
    center: ArrayLike,
    scale: ArrayLike | float,
    rot_deg: float,
    output_size: Sequence[int],
    shift: ArrayLike = (0.0, 0.0),
    inv: bool = False,
    pixel_std: float = PIXEL_STD,
) -> np.ndarray:
    """(2, 3) affine mapping the image region (center, scale, rotation) onto ``output_size`` (w, h).

    Matches the reference: the crop width ``scale[0] * pixel_std`` maps to the output width, the
    crop is rotated by ``rot_deg`` (counter-clockwise in the image), and ``inv`` returns the map
    from output pixels back to image pixels.
    """
    scale_arr = np.asarray(scale, dtype=np.float32)
    if scale_arr.ndim == 0:
        scale_arr = np.array([scale_arr, scale_arr], dtype=np.float32)
    center_arr = np.asarray(center, dtype=np.float32)
    shift_arr = np.asarray(shift, dtype=np.float32)
    src_size = scale_arr * pixel_std
    dst_w, dst_h = float(output_size[0]), float(output_size[1])

    src_dir = _rotate(np.array([0.0, src_size[0] * -0.5]), np.pi * rot_deg / 180.0)
    dst_dir = np.array([0.0, dst_w * -0.5], dtype=np.float32)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center_arr + src_size * shift_arr
    src[1] = src[0] + src_dir
    dst[0] = (dst_w * 0.5, dst_h * 0.5)
    dst[1] = dst[0] + dst_dir
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    if inv:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def affine_transform_points(pts: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to points of shape (..., 2); returns float64 of the same shape."""
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ mat[:, :2].T + mat[:, 2]


def hflip_matrix(width: int) -> np.ndarray:
    """(3, 3) homogeneous matrix of the horizontal image flip ``x -> width - 1 - x``."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def fliplr_joints(
    joints: np.ndarray, vis: np.ndarray, width: int, flip_indices: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror joints (K, >=2) in an image of ``width`` and swap left/right joints: joint ``k`` of the
    result is joint ``flip_indices[k]`` mirrored (the data's ``KeypointMeta.flip_indices``).

    Returns new arrays; as in the reference, coordinates of joints with ``vis == 0`` become 0.
    """
    joints = np.array(joints, dtype=np.float32, copy=True)
    vis = np.array(vis, dtype=np.float32, copy=True)
    joints[:, 0] = width - joints[:, 0] - 1
    perm = list(flip_indices)
    joints, vis = joints[perm], vis[perm]
    mask = vis.reshape(len(vis), -1)[:, :1] > 0
    return joints * mask, vis


def half_body_transform(
    joints: np.ndarray,
    vis: np.ndarray,
    upper_body_ids: Sequence[int],
    aspect_ratio: float,
    rng: np.random.Generator,
    pixel_std: float = PIXEL_STD,
    enlarge: float = 1.5,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Center/scale of a box around the upper or the lower body's labeled joints, or None.

    Reference behaviour: the upper body is chosen when a standard normal draw is < 0.5 and it
    has more than 2 labeled joints, else the lower body if it has more than 2; fewer than 2
    selected joints gives None. The box is grown to ``aspect_ratio`` and enlarged by 1.5.
    """
    vis = np.asarray(vis).reshape(len(vis), -1)[:, 0]
    labeled = vis > 0
    is_upper = np.zeros(len(vis), dtype=bool)
    is_upper[list(upper_body_ids)] = True
    upper = np.asarray(joints)[labeled & is_upper, :2]
    lower = np.asarray(joints)[labeled & ~is_upper, :2]
    prefer_upper = rng.standard_normal() < 0.5
    selected = upper if (prefer_upper and len(upper) > 2) or len(lower) <= 2 else lower
    if len(selected) < 2:
        return None
    selected = selected.astype(np.float32)
    center = selected.mean(axis=0)
    w, h = selected.max(axis=0) - selected.min(axis=0)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / pixel_std, h / pixel_std], dtype=np.float32) * enlarge
    return center.astype(np.float32), scale


def crop_image(
    image: np.ndarray, mat: np.ndarray, output_size: Sequence[int], border_value: int = 0
) -> np.ndarray:
    """Warp ``image`` with the (2, 3) affine ``mat`` into ``output_size`` (w, h), bilinear."""
    return cv2.warpAffine(
        image,
        mat,
        (int(output_size[0]), int(output_size[1])),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(border_value,) * 3,
    )


def crop_person(
    image: np.ndarray,
    center: ArrayLike,
    scale: ArrayLike,
    output_size: Sequence[int],
    rot_deg: float = 0.0,
    mirror: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The top-down crop of the dataset and of inference: the region (center, scale, rotation) of
    ``image`` warped to ``output_size`` (w, h), bilinear, zeros outside the image.

    With ``mirror`` the image is flipped horizontally first and ``center`` is in the flipped frame;
    the flip is folded into the one warp. Returns the crop and the (2, 3) affine from the (flipped)
    image frame to the crop, which maps keypoints the same way.
    """
    mat = get_affine_transform(center, scale, rot_deg, output_size)
    warp = (np.vstack([mat, [0.0, 0.0, 1.0]]) @ hflip_matrix(image.shape[1]))[:2] if mirror else mat
    return crop_image(image, warp, output_size), mat


def crop_people(
    image: np.ndarray, boxes: Sequence[ArrayLike], input_size: Sequence[int], padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inference crops at ``[x, y, w, h]`` boxes, as the dataset crops its evaluation samples: crops
    (N, h, w, 3) of ``image``'s dtype, centers (N, 2) and scales (N, 2)."""
    width, height = int(input_size[0]), int(input_size[1])
    crops = np.zeros((len(boxes), height, width, *image.shape[2:]), dtype=image.dtype)
    centers = np.zeros((len(boxes), 2), dtype=np.float32)
    scales = np.zeros((len(boxes), 2), dtype=np.float32)
    for i, box in enumerate(boxes):
        centers[i], scales[i] = box_to_center_scale(box, width / height, padding)
        crops[i] = crop_person(image, centers[i], scales[i], (width, height))[0]
    return crops, centers, scales
