"""The arithmetic of keyframe clips, apart from any model: the path of starting noises between
seeds (``keyframe_seeds``, ``slerp``) and the optical-flow in-betweens (``optical_flows``,
``frame_between``) that turn a few keyframes into a clip."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import numpy.typing as npt
import torch

RgbArray = npt.NDArray[np.uint8]


def keyframe_seeds(seed: int, count: int) -> list[int]:
    """The seeds of the noise path's anchors: ``seed`` itself first (so the first keyframe starts
    from the same noise as a still image of that seed), then seeds derived from it by hashing, so
    the clips of seeds n and n + 1 share nothing."""
    derived = [
        int.from_bytes(hashlib.sha256(f"greenlight-keyframe:{seed}:{i}".encode()).digest()[:8], "big") >> 1
        for i in range(1, count)
    ]
    return [seed, *derived]


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between two noise tensors: unlike a straight line, it keeps the norm
    a Gaussian noise of that size has, which the denoiser expects."""
    a_flat, b_flat = a.flatten().double(), b.flatten().double()
    cosine = float(torch.dot(a_flat, b_flat) / (a_flat.norm() * b_flat.norm()))
    omega = math.acos(max(-1.0, min(1.0, cosine)))
    if math.sin(omega) < 1e-6:  # (anti)parallel: the line is as good
        return (1 - t) * a + t * b
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)


def optical_flows(first: RgbArray, second: RgbArray) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Dense optical flow both ways between two RGB frames (OpenCV DIS, medium preset): for each
    pixel of ``first`` where it went in ``second``, and the other way round (H x W x 2, in px)."""
    import cv2

    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gray_a = cv2.cvtColor(first, cv2.COLOR_RGB2GRAY)
    gray_b = cv2.cvtColor(second, cv2.COLOR_RGB2GRAY)
    # The output arrays are given (the typed binding wants one); DIS ignores their contents unless
    # told to start from them (setUseInitialFlow).
    forward = dis.calc(gray_a, gray_b, np.zeros((*gray_a.shape, 2), dtype=np.float32))
    backward = dis.calc(gray_b, gray_a, np.zeros((*gray_a.shape, 2), dtype=np.float32))
    return np.asarray(forward, dtype=np.float32), np.asarray(backward, dtype=np.float32)


def frame_between(
    first: RgbArray,
    second: RgbArray,
    forward: npt.NDArray[np.float32],
    backward: npt.NDArray[np.float32],
    t: float,
) -> RgbArray:
    """The frame at time ``t`` (0 < t < 1) between two frames: each is warped toward ``t`` along
    its flow and the two are blended, the nearer one weighing more.

    Backward warping with the flows read at the in-between pixel (``first`` sampled at
    ``x + t * backward(x)``, ``second`` at ``x + (1 - t) * forward(x)``): exact for smooth motion,
    a soft cross-fade where the flow fails (new content, occlusions).
    """
    import cv2

    height, width = first.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))

    def warp(image: RgbArray, flow: npt.NDArray[np.float32], amount: float) -> npt.NDArray[np.float32]:
        map_x = grid_x + amount * flow[..., 0]
        map_y = grid_y + amount * flow[..., 1]
        warped = cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return np.asarray(warped, dtype=np.float32)

    blended = (1 - t) * warp(first, backward, t) + t * warp(second, forward, 1 - t)
    return np.asarray(blended.round().clip(0, 255), dtype=np.uint8)
