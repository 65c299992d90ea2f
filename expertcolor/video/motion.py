"""Motion between consecutive video frames, as a flow field that warps the previous frame's maps onto this one.

Every estimator takes two lightness images ``prev`` and ``cur`` ``(1, 1, h, w)`` in ``[0, 100]`` and
returns a backward flow ``(1, 2, h, w)`` in pixels (channel 0: x, 1: y): the pixel ``p`` of ``cur``
shows what ``prev`` showed at ``p + flow[p]``, so ``warp(prev_map, flow)`` aligns any map of the
previous frame with the current one. Estimators are registered by name (:func:`create_motion`,
:func:`list_motions`):

* ``"none"``: zero flow (plain averaging over time, for comparison);
* ``"translation"``: one global shift by phase correlation (pans);
* ``"affine"``: one global affine motion by coarse-to-fine Gauss-Newton (Lucas-Kanade) on the
  whole frame with robust weights (pans, zooms, small rotations; moving objects are outliers);
* ``"flow"``: dense coarse-to-fine Lucas-Kanade flow at half working resolution (any motion,
  moving people and animals included); the default, chosen by measurement.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._registry import Registry
from ..merge.filters import box_filter

__all__ = ["MotionEstimator", "create_motion", "list_motions", "warp", "pixel_grid"]

#: ``estimate(prev, cur) -> flow``: see the module docstring for shapes and conventions.
MotionEstimator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

MOTIONS: Registry[Callable[..., MotionEstimator]] = Registry("motion estimator")

# Coarse-to-fine levels stop when the short side would drop below this many pixels.
_MIN_LEVEL_SIDE = 16


def list_motions() -> list[str]:
    """Names of the motion estimators."""
    return MOTIONS.names()


def create_motion(name: str, **params: float) -> MotionEstimator:
    """The motion estimator registered as ``name`` (see the module docstring), with its parameters;
    ``name`` may also be a spec ``"name:key=value,key=value"`` (``"flow:finest=0"``).

    Raises:
        ValueError: for an unknown name or parameter, or a malformed spec.
    """
    name, _, spec = name.partition(":")
    for item in filter(None, (x.strip() for x in spec.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"bad motion parameter {item!r}; write name:key=value,key=value")
        params[key.strip()] = _number(value.strip(), item)
    if name not in MOTIONS:
        raise ValueError(f"unknown motion estimator {name!r}; choose from {list_motions()}")
    try:
        return MOTIONS.create(name, **params)
    except TypeError as e:
        raise ValueError(f"bad parameters for motion estimator {name!r}: {e}") from None


def _number(text: str, item: str) -> float:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    raise ValueError(f"bad motion parameter {item!r}: {text!r} is not a number")


def pixel_grid(h: int, w: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates ``(x, y)``, each ``(h, w)`` float32."""
    ys = torch.arange(h, dtype=torch.float32, device=device)
    xs = torch.arange(w, dtype=torch.float32, device=device)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return x, y


def warp(x: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``x`` at ``p + flow[p]`` (bilinear, edges replicated).

    Args:
        x: ``(B, C, h, w)``.
        flow: ``(B, 2, h, w)`` in pixels.

    Returns:
        The warped ``x`` ``(B, C, h, w)`` and ``(B, 1, h, w)`` float, 1 where the sample lies inside
        the image, else 0.
    """
    h, w = x.shape[-2:]
    gx, gy = pixel_grid(h, w, x.device)
    sx = gx + flow[:, 0]
    sy = gy + flow[:, 1]
    grid = torch.stack([2 * sx / max(w - 1, 1) - 1, 2 * sy / max(h - 1, 1) - 1], dim=-1)
    out = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=True)
    inside = (sx >= -0.5) & (sx <= w - 0.5) & (sy >= -0.5) & (sy <= h - 0.5)
    return out, inside[:, None].to(x.dtype)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences ``(d/dx, d/dy)`` of ``(B, 1, h, w)``, edges replicated."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return 0.5 * (p[..., 1:-1, 2:] - p[..., 1:-1, :-2]), 0.5 * (p[..., 2:, 1:-1] - p[..., :-2, 1:-1])


def _pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``x`` and up to ``levels - 1`` halvings (area averaging), finest first."""
    out = [x]
    while len(out) < levels and min(out[-1].shape[-2:]) >= 2 * _MIN_LEVEL_SIDE:
        out.append(F.avg_pool2d(out[-1], 2, ceil_mode=True))
    return out


def _upsample_flow(flow: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A coarse level's flow on the next finer level's grid (vectors scaled with the grid)."""
    sy, sx = shape[0] / flow.shape[-2], shape[1] / flow.shape[-1]
    up = F.interpolate(flow, size=shape, mode="bilinear", align_corners=False)
    return torch.cat([up[:, :1] * sx, up[:, 1:] * sy], dim=1)


@MOTIONS.register("none")
def _no_motion() -> MotionEstimator:
    def estimate(prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        return cur.new_zeros(cur.shape[0], 2, *cur.shape[-2:])

    return estimate


@MOTIONS.register("translation")
def _translation() -> MotionEstimator:
    """One global shift, the peak of the phase correlation (Hann window, sub-pixel by parabola)."""

    def estimate(prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        h, w = cur.shape[-2:]
        hann = lambda n: torch.hann_window(n, periodic=False, device=cur.device)  # noqa: E731
        win = hann(h)[:, None] * hann(w)[None]
        a = torch.fft.rfft2((prev[0, 0] - prev.mean()) * win)
        b = torch.fft.rfft2((cur[0, 0] - cur.mean()) * win)
        cross = a * b.conj()
        corr = torch.fft.irfft2(cross / cross.abs().clamp_min(1e-9), s=(h, w))
        iy, ix = divmod(int(corr.argmax()), w)
        dy = iy + _parabola(corr[(iy - 1) % h, ix], corr[iy, ix], corr[(iy + 1) % h, ix])
        dx = ix + _parabola(corr[iy, (ix - 1) % w], corr[iy, ix], corr[iy, (ix + 1) % w])
        dy = dy - h if dy > h / 2 else dy
        dx = dx - w if dx > w / 2 else dx
        flow = cur.new_empty(1, 2, h, w)
        flow[:, 0], flow[:, 1] = dx, dy
        return flow

    return estimate


def _parabola(left: torch.Tensor, mid: torch.Tensor, right: torch.Tensor) -> float:
    """Offset in ``[-0.5, 0.5]`` of the vertex of the parabola through three samples."""
    den = float(left - 2 * mid + right)
    return 0.0 if abs(den) < 1e-12 else max(-0.5, min(0.5, 0.5 * float(left - right) / den))


@MOTIONS.register("affine")
def _affine(levels: int = 4, iterations: int = 6, scale: float = 8.0, finest: int = 1) -> MotionEstimator:
    """Global affine motion ``flow(p) = A (p - c) + t`` by Gauss-Newton on the L difference.

    Coarse to fine; each step solves the 6-parameter normal equations with Cauchy weights of scale
    ``scale`` (L units) on the residual, so moving objects and occlusions count little. Levels
    finer than ``finest`` (0: working resolution, 1: half of it) are skipped: a global motion is
    already sub-pixel there, at a quarter of the cost.
    """

    def estimate(prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        pp, pc = _pyramid(prev, levels), _pyramid(cur, levels)
        params = torch.zeros(6, dtype=torch.float64)  # a_xx a_xy t_x a_yx a_yy t_y
        h_last, w_last = pp[-1].shape[-2:]
        for level in range(len(pp) - 1, min(finest, len(pp) - 1) - 1, -1):
            p, c = pp[level], pc[level]
            h, w = c.shape[-2:]
            if level < len(pp) - 1:
                params[2] *= w / pp[level + 1].shape[-1]
                params[5] *= h / pp[level + 1].shape[-2]
            h_last, w_last = h, w
            x, y = pixel_grid(h, w, cur.device)
            x, y = x - (w - 1) / 2, y - (h - 1) / 2
            r2 = ((w + h) / 4) ** 2  # squared typical distance from the centre
            for _ in range(iterations):
                flow = _affine_flow(params, x, y)
                warped, inside = warp(p, flow)
                gx, gy = _gradients(0.5 * (warped + c))
                r = (warped - c)[0, 0]
                wt = (inside[0, 0] / (1 + (r / scale) ** 2)).flatten()
                gx, gy = gx[0, 0], gy[0, 0]
                J = torch.stack([gx * x, gx * y, gx, gy * x, gy * y, gy]).flatten(1)  # (6, N)
                Jw = J * wt
                H = (Jw @ J.T).double().cpu()  # 6 x 6: solved on the CPU whatever the device
                g = (Jw @ r.flatten()).double().cpu()
                # Ridge on the linear part (in flow at a typical radius): where only a few edges
                # constrain the motion (a bar on a flat ground) the solution stays a translation.
                ridge = 1e-2 * float(H[2, 2] + H[5, 5]) / 2 + 1e-9
                H += torch.diag(torch.tensor([r2, r2, 1e-2, r2, r2, 1e-2], dtype=torch.float64)) * ridge
                step = torch.linalg.solve(H, -g)
                params += step
                if float(step[[2, 5]].abs().max()) < 1e-2 and float(step[[0, 1, 3, 4]].abs().max()) < 1e-4:
                    break
        h, w = cur.shape[-2:]
        params[2] *= w / w_last
        params[5] *= h / h_last
        x, y = pixel_grid(h, w, cur.device)
        return _affine_flow(params, x - (w - 1) / 2, y - (h - 1) / 2)

    return estimate


def _affine_flow(params: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    a = [float(v) for v in params]
    return torch.stack([a[0] * x + a[1] * y + a[2], a[3] * x + a[4] * y + a[5]])[None]


@MOTIONS.register("flow")
def _dense_flow(
    levels: int = 4, iterations: int = 3, radius: int = 4, smooth: int = 4, damping: float = 0.1, finest: int = 1
) -> MotionEstimator:
    """Dense coarse-to-fine Lucas-Kanade: at each pixel the shift that best explains the L difference
    over a ``(2 radius + 1)^2`` window, refined ``iterations`` times per level and box-smoothed by
    ``smooth`` pixels; textureless windows keep the coarser level's estimate (damped solve). Levels
    finer than ``finest`` are skipped and the flow is upsampled to working resolution instead (at
    half resolution it costs a third and carries as well; see ``tools/eval_video.py``)."""

    def estimate(prev: torch.Tensor, cur: torch.Tensor) -> torch.Tensor:
        pp, pc = _pyramid(prev, levels), _pyramid(cur, levels)
        flow = cur.new_zeros(1, 2, *pc[-1].shape[-2:])
        for level in range(len(pp) - 1, min(finest, len(pp) - 1) - 1, -1):
            p, c = pp[level], pc[level]
            if flow.shape[-2:] != c.shape[-2:]:
                flow = _upsample_flow(flow, tuple(c.shape[-2:]))
            for _ in range(iterations):
                warped, _ = warp(p, flow)
                gx, gy = _gradients(0.5 * (warped + c))
                r = warped - c
                sxx, syy, sxy = box_filter(gx * gx, radius), box_filter(gy * gy, radius), box_filter(gx * gy, radius)
                sxr, syr = box_filter(gx * r, radius), box_filter(gy * r, radius)
                damp = damping * float((sxx + syy).mean()) + 1e-6
                sxx, syy = sxx + damp, syy + damp
                det = sxx * syy - sxy * sxy
                du = -(syy * sxr - sxy * syr) / det
                dv = -(sxx * syr - sxy * sxr) / det
                flow = flow + torch.cat([du, dv], dim=1).clamp(-2.0, 2.0)
            flow = box_filter(flow, smooth)
        return flow if flow.shape[-2:] == cur.shape[-2:] else _upsample_flow(flow, tuple(cur.shape[-2:]))

    return estimate
