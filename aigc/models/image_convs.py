"""The two convolutions at the image end of the DCGAN pair, D's first (1 channel in) and G's last (1 channel
out), computed on a CPU as one matrix product each plus a gather or a scatter of 4 × 4 patches, and the
channels-last layout between them.

oneDNN, which runs PyTorch's convolutions on a CPU, is slow with a single image channel in bf16: these two
layers took a large share of a training step for a small fraction of its arithmetic. As a 4 × 4 convolution with
stride 2 and padding 1, D's first layer reads each output pixel from a 4 × 4 patch of the image, so it is
the product of its weights, (C, 16), with the image's patches, (16, pixels); G's last layer is the adjoint:
the product scatters 16 values from each input pixel back into the patches, which overlap in four phases of
stride 2, summed as four shifted copies.

The layers between them run channels-last (each pixel's channels side by side in memory), the layout oneDNN's
convolutions and batch norms are fastest in, in bf16 and in float32: ImageConv2d writes its output that way
(each output pixel's channels are one row of its product) and ImageConvTranspose2d reads it in place; G's body
converts once (ChannelsLast), handing the gradient back in its input's layout, and D's head reads the
channels-last features as they lie (base.features_product). bench/image_convs.py times a training step both
ways. On other devices cuDNN or MPS pick their own layouts, and in float64 (the exactness tests) the layers
are PyTorch's own. They subclass nn.Conv2d and nn.ConvTranspose2d with the same parameters, so checkpoints
are unchanged.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a convolution of x runs in: autocast's where it is on and x is float32, else x's own."""
    if x.dtype == torch.float32 and torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu")
    return x.dtype


def on_cpu_path(x: torch.Tensor) -> bool:
    """Whether x, a batch of images or feature maps, takes this module's CPU path: on a CPU, in bf16 or float32."""
    return x.device.type == "cpu" and x.dim() == 4 and compute_dtype(x) in (torch.bfloat16, torch.float32)


def patches(image: torch.Tensor) -> torch.Tensor:
    """The 4 × 4 patches, stride 2, padding 1, of one-channel images: (b, 1, H, W) -> (b, 16, H/2 · W/2),
    row ky·4 + kx holding the patches' pixel (ky, kx)."""
    b, _, height, width = image.shape
    padded = F.pad(image.reshape(b, height, width), (1, 1, 1, 1))             # (b, H + 2, W + 2)
    s_b, s_y, s_x = padded.stride()
    view = padded.as_strided((b, 4, 4, height // 2, width // 2), (s_b, s_y, s_x, 2 * s_y, 2 * s_x))
    return view.reshape(b, 16, height // 2 * width // 2)                      # one copy


def unpatch(cols: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The adjoint of patches(): sums each patch's 16 values back into the pixels they came from,
    (b, 16, H/2 · W/2) -> (b, 1, H, W). Patch pixel (ky, kx) = (2·dy + py, 2·dx + px) of the patch at (i, j)
    lands on the padded image's (2(i + dy) + py, 2(j + dx) + px): for each of the four (dy, dx) the patches
    tile an H × W image, shifted by (2·dy, 2·dx) and cropped by the padding (negative padding crops)."""
    b, h, w = cols.shape[0], height // 2, width // 2
    tiles = (cols.view(b, 2, 2, 2, 2, h, w)                  # (b, dy, py, dx, px, i, j)
             .permute(0, 1, 3, 5, 2, 6, 4)                   # (b, dy, dx, i, py, j, px)
             .reshape(b, 2, 2, height, width))               # one copy
    image = (F.pad(tiles[:, 0, 0], (-1, 1, -1, 1)) + F.pad(tiles[:, 0, 1], (1, -1, -1, 1))
             + F.pad(tiles[:, 1, 0], (-1, 1, 1, -1)) + F.pad(tiles[:, 1, 1], (1, -1, 1, -1)))
    return image.unsqueeze(1)                                # (b, 1, H, W)


def pixel_rows(h: torch.Tensor) -> torch.Tensor:
    """(b, C, h, w) -> (b, h·w, C), one row per pixel: a view when h is channels-last, else one copy."""
    return h.permute(0, 2, 3, 1).reshape(h.shape[0], -1, h.shape[1])


def channels_from_patches(cols: torch.Tensor, w: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """W · cols: patches (b, 16, n) of H × W images and weights (C, 16) -> (b, C, H/2, W/2), channels-last, the
    layout oneDNN's convolutions run fastest in. D's first layer, and the gradient of G's last one."""
    b = cols.shape[0]
    out = torch.empty(b, w.shape[0], height // 2, width // 2, dtype=cols.dtype, device=cols.device,
                      memory_format=torch.channels_last)
    torch.bmm(cols.transpose(1, 2), w.t().expand(b, -1, -1), out=pixel_rows(out))   # (b, n, C), written into out
    return out


def image_from_channels(h: torch.Tensor, w: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Wᵀ · h summed back into the image: (b, C, n) -> (b, 1, H, W), the adjoint of channels_from_patches
    after patches(). G's last layer, and the gradient of D's first one."""
    return unpatch(torch.bmm(w.t().expand(len(h), -1, -1), h), height, width)


def weight_grad(per_channel: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """(b, C, n) against patches (b, 16, n) -> the gradient of a (C, 1, 4, 4) weight, summed over the batch
    in float32."""
    return torch.bmm(per_channel, cols.transpose(1, 2)).sum(0, dtype=torch.float32).view(-1, 1, 4, 4)


class _ImageConv(torch.autograd.Function):
    """y = W · patches(x) + bias: (b, 1, H, W) -> (b, C, H/2, W/2), channels-last."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        dtype = compute_dtype(x)
        cols = patches(x.to(dtype))                                              # (b, 16, n)
        w = weight.to(dtype).view(weight.shape[0], 16)                           # (C, 16)
        height, width = x.shape[2:]
        y = channels_from_patches(cols, w, height, width)                        # (b, C, H/2, W/2)
        if bias is not None:
            y += bias.to(dtype).view(-1, 1, 1)
        ctx.save_for_backward(cols, w)
        ctx.input_dtype, ctx.size = x.dtype, (height, width)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        cols, w = ctx.saved_tensors
        grad_y = pixel_rows(grad_y.to(cols.dtype)).transpose(1, 2)               # (b, C, n)
        grad_x = grad_w = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = image_from_channels(grad_y, w, *ctx.size).to(ctx.input_dtype)
        if ctx.needs_input_grad[1]:
            grad_w = weight_grad(grad_y, cols)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_y.sum(2).sum(0).float()            # summing both dims at once converts to float32 first
        return grad_x, grad_w, grad_bias


class _ImageConvTranspose(torch.autograd.Function):
    """x = unpatch(Wᵀ · h) + bias: (b, C, h, w) -> (b, 1, 2h, 2w); h is read in place when channels-last."""

    @staticmethod
    def forward(ctx, h, weight, bias):
        dtype, input_dtype = compute_dtype(h), h.dtype
        rows, columns = h.shape[2:]
        h = pixel_rows(h.to(dtype)).transpose(1, 2)                              # (b, C, n)
        w = weight.to(dtype).view(h.shape[1], 16)                                # (C, 16)
        image = image_from_channels(h, w, 2 * rows, 2 * columns)                 # (b, 1, 2h, 2w)
        if bias is not None:
            image += bias.to(dtype)
        ctx.save_for_backward(h, w)
        ctx.input_dtype = input_dtype
        return image

    @staticmethod
    def backward(ctx, grad_image):
        h, w = ctx.saved_tensors
        grad_cols = patches(grad_image.to(h.dtype))                              # (b, 16, n)
        grad_h = grad_w = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_h = channels_from_patches(grad_cols, w, *grad_image.shape[2:]).to(ctx.input_dtype)
        if ctx.needs_input_grad[1]:
            grad_w = weight_grad(h, grad_cols)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_image.sum().float().view(1)
        return grad_h, grad_w, grad_bias


class ImageConv2d(nn.Conv2d):
    """nn.Conv2d(1, channels, 4, 2, 1): (b, 1, H, W) -> (b, channels, H/2, W/2), H and W even."""

    def __init__(self, channels: int, bias: bool = True):
        super().__init__(1, channels, 4, 2, 1, bias=bias)

    def forward(self, x):
        if not on_cpu_path(x) or x.shape[-2] % 2 or x.shape[-1] % 2:
            return super().forward(x)
        return _ImageConv.apply(x, self.weight, self.bias)


class ImageConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d(channels, 1, 4, 2, 1): (b, channels, h, w) -> (b, 1, 2h, 2w)."""

    def __init__(self, channels: int, bias: bool = True):
        super().__init__(channels, 1, 4, 2, 1, bias=bias)

    def forward(self, h, output_size=None):
        if not on_cpu_path(h) or output_size is not None:
            return super().forward(h, output_size)
        return _ImageConvTranspose.apply(h, self.weight, self.bias)


class _ToChannelsLast(torch.autograd.Function):
    """x copied into channels-last, its gradient copied back into PyTorch's default layout. Autograd's own
    conversion hands the gradient back channels-last, and an elementwise backward whose gradient and saved
    tensor differ in layout (the layers before the conversion) takes a slow strided path."""

    @staticmethod
    def forward(ctx, x):
        return x.contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx, grad):
        return grad.contiguous()


class ChannelsLast(nn.Module):
    """(b, C, H, W) in channels-last on a CPU, where oneDNN's convolutions run fastest in it; else as is."""

    def forward(self, h):
        if on_cpu_path(h) and not h.is_contiguous(memory_format=torch.channels_last):
            return _ToChannelsLast.apply(h)
        return h
