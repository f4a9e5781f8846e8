"""Image tensors to pixels: grids, PNG bytes, animated GIFs (Pillow)."""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(b, 1, 28, 28) in [-1, 1] -> (b, 28, 28) uint8."""
    x = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round()
    return x.to(torch.uint8).squeeze(1).numpy()


def grid(images: torch.Tensor | np.ndarray, nrow: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """A (H, W) uint8 mosaic with `nrow` images per row (default: square), separated by `pad` dark pixels."""
    tiles = to_uint8(images) if isinstance(images, torch.Tensor) else np.asarray(images, dtype=np.uint8)
    b, h, w = tiles.shape
    nrow = nrow or math.ceil(math.sqrt(b))
    ncol = math.ceil(b / nrow)
    out = np.zeros((ncol * (h + pad) + pad, nrow * (w + pad) + pad), dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, nrow)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = tile
    if scale > 1:
        out = out.repeat(scale, axis=0).repeat(scale, axis=1)   # nearest neighbour: crisp on a projector
    return out


def png_bytes(pixels: np.ndarray, compress_level: int = 6) -> bytes:
    """zlib's level 6 (Pillow's default) for files; 1 for pictures encoded as they come: half the CPU of 6
    for an upscaled digit grid, and a third more bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def gif_bytes(frames: list[np.ndarray], ms_per_frame: int = 80, bounce: bool = True) -> bytes:
    """Animated GIF of uint8 frames; `bounce` plays forward then back so the loop has no jump."""
    if bounce and len(frames) > 2:
        frames = list(frames) + list(frames[-2:0:-1])
    images = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return buffer.getvalue()
