"""Feature matrices to 0–255 greyscale fingerprints (paper section 4.2), and pictures of them."""

from __future__ import annotations

import os

import numpy as np

from twinwatch.features import FEATURE_COLUMNS, GROUP_SLICES, N_FEATURES, N_ROWS
from twinwatch.protocols import PROTOCOL_ROWS

IMAGE_SHAPE = (N_ROWS, N_FEATURES)
IMAGE_SPEC_VERSION = 1


def _scale(block: np.ndarray, axis: int) -> np.ndarray:
    peak = block.max(axis=axis, keepdims=True)
    return np.divide(block, peak, out=np.zeros_like(block), where=peak > 0)


def to_images(matrices: np.ndarray) -> np.ndarray:
    """(n, 13, 53) non-negative features → (n, 13, 53) uint8 greyscale.

    Every feature is ≥ 0, so each value is divided by the largest value of its normalisation set
    (min fixed at 0: black means "none", not "the smallest"). Group 1 (across-protocol statistics) is
    normalised per column across the 13 protocol rows, so it shows how traffic divides between
    protocols; groups 2–4 (packets, timings, ports) are normalised per protocol row across the
    group's columns, so each row shows the shape of that protocol's traffic.
    """
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.ndim == 2:
        return to_images(matrices[None])[0]
    if matrices.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"feature matrices must be (n, {N_ROWS}, {N_FEATURES}), got {matrices.shape}")
    if (matrices < 0).any() or not np.isfinite(matrices).all():
        raise ValueError("feature matrices must be finite and non-negative")
    scaled = np.zeros_like(matrices)
    group1 = GROUP_SLICES[1]
    scaled[:, :, group1] = _scale(matrices[:, :, group1], axis=1)
    for group in (2, 3, 4):
        columns = GROUP_SLICES[group]
        scaled[:, :, columns] = _scale(matrices[:, :, columns], axis=2)
    return np.rint(scaled * 255.0).astype(np.uint8)


def blank_images(images: np.ndarray) -> np.ndarray:
    """True for images that carry nothing: all black or all white."""
    flat = images.reshape(images.shape[0], -1)
    return (flat.max(axis=1) == 0) | (flat.min(axis=1) == 255)


def contact_sheet(
    images: np.ndarray, titles: list[str], heading: str, path: str | os.PathLike, columns: int = 6
) -> None:
    """A PNG of fingerprints in a grid: protocol rows labelled, feature groups split by red dashes.

    Drawn with Pillow (not matplotlib) so that a lab's hundreds of device-days take seconds.
    """
    from PIL import Image, ImageDraw, ImageFont

    scale_x, scale_y = 4, 10
    tile_w, tile_h = N_FEATURES * scale_x, N_ROWS * scale_y
    label_w, caption_h, gap, top = 40, 12, 10, 30
    count = max(len(images), 1)
    columns = max(1, min(columns, count))
    rows = (count + columns - 1) // columns
    width = label_w + columns * (tile_w + gap)
    height = top + rows * (tile_h + caption_h + gap) + 14
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=10)
    small = ImageFont.load_default(size=8)
    draw.text((6, 8), heading, fill="black", font=font)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        x = label_w + column * (tile_w + gap)
        y = top + row * (tile_h + caption_h + gap)
        tile = Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L").resize((tile_w, tile_h), Image.NEAREST)
        sheet.paste(tile.convert("RGB"), (x, y))
        for boundary in (GROUP_SLICES[2].start, GROUP_SLICES[3].start, GROUP_SLICES[4].start):
            bx = x + boundary * scale_x - 1
            for dash in range(y, y + tile_h, 6):
                draw.line([(bx, dash), (bx, min(dash + 3, y + tile_h))], fill=(220, 0, 0))
        draw.text((x, y + tile_h + 1), titles[index] if index < len(titles) else "", fill="black", font=font)
        if column == 0:
            for protocol_index, protocol in enumerate(PROTOCOL_ROWS):
                draw.text((2, y + protocol_index * scale_y), protocol, fill=(60, 60, 60), font=small)
    draw.text((6, height - 13), "columns: across-protocol 4 | packets 21 | timings 18 | ports 10 (red dashes)",
              fill=(90, 90, 90), font=font)
    sheet.save(path)


def labelled_fingerprint(image: np.ndarray, heading: str, path: str | os.PathLike) -> None:
    """One fingerprint at full size with protocol and feature labels (the paper's Fig. 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(12, 4))
    axis.imshow(image, cmap="gray", vmin=0, vmax=255, aspect="auto", interpolation="nearest")
    axis.set_yticks(range(N_ROWS))
    axis.set_yticklabels(PROTOCOL_ROWS, fontsize=7)
    axis.set_xticks(range(N_FEATURES))
    axis.set_xticklabels([c.name for c in FEATURE_COLUMNS], rotation=90, fontsize=5)
    for boundary in (GROUP_SLICES[2].start, GROUP_SLICES[3].start, GROUP_SLICES[4].start):
        axis.axvline(boundary - 0.5, color="red", linestyle="--", linewidth=1)
    axis.set_title(heading, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
