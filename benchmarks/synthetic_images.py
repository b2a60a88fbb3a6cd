"""A synthetic image folder for `benchmarks/data_scale.py`: shapes on textures, 64x64 RGB PNGs.

Image i is drawn from its own seed (`numpy.random.default_rng([SEED, i])`): one of four
textures (an oriented grating, a checkerboard, rings, blurred blobs) in two random colours
with a little grain, and one to three filled ellipses, rectangles or triangles on top. The
same index always gives the same pixels, whichever process writes it.

The sizes nest: the folder for the largest size holds the next smaller one as a subfolder
(`folder/first50000/first10000/...`), and the folder walk is recursive, so the files are
written once and every size is a real folder of exactly that many images. Files go 1000
to a subfolder, are written under a hidden temporary name and renamed, and existing files
are skipped: an interrupted write resumes where it stopped.
"""

import functools
import math
import os

import numpy as np

SEED = 20
PER_FOLDER = 1000
LADDER = (10_000, 50_000, 200_000)  # the default sizes of benchmarks/data_scale.py


def ladder(sizes):
    """Every size the layout nests, largest first: the requested ones and LADDER's, so
    the layout never depends on which sizes one run asks for."""
    return sorted(set(sizes) | set(LADDER), reverse=True)


def folder_roots(work, sizes, name="folder"):
    """{size: root folder} for `sizes`: each root holds the next smaller one."""
    sizes_all = ladder(sizes)
    roots = {sizes_all[0]: os.path.join(work, f"{name}-{sizes_all[0]}")}
    for larger, size in zip(sizes_all, sizes_all[1:]):
        roots[size] = os.path.join(roots[larger], f"first{size}")
    return {size: roots[size] for size in sizes}


def chunks(work, sizes):
    """(folder, first index, end index) jobs, one per subfolder of up to PER_FOLDER files:
    every image of the largest requested size, each in its place in the nested layout."""
    nested = [s for s in ladder(sizes) if s <= max(sizes)]
    roots, jobs, lo = folder_roots(work, nested), [], 0
    for size in sorted(nested):
        start = lo
        while start < size:
            end = min(size, (start // PER_FOLDER + 1) * PER_FOLDER)
            jobs.append((os.path.join(roots[size], f"{start // PER_FOLDER:04d}"), start, end))
            start = end
        lo = size
    return jobs


def write_folder(work, sizes, processes=2, size=64):
    """Write (or complete) the nested folder; returns ({size: root}, files written now)."""
    import multiprocessing

    jobs = chunks(work, sizes)
    write = functools.partial(write_chunk, size=size)
    # fork: this process has not imported TensorFlow, and forking skips re-importing numpy
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        written = sum(pool.imap_unordered(write, jobs, chunksize=4))
    return folder_roots(work, sizes), written


def write_chunk(job, size=64):
    folder, start, end = job
    os.makedirs(folder, exist_ok=True)
    present = set(os.listdir(folder))
    written = 0
    for i in range(start, end):
        name = f"{i:07d}.png"
        if name in present:
            continue
        tmp = os.path.join(folder, f".{name}.tmp")  # hidden: never listed as an image
        synthetic_image(i, size).save(tmp, format="PNG", compress_level=1)
        os.replace(tmp, os.path.join(folder, name))
        written += 1
    return written


def synthetic_image(i, size=64):
    """Image `i` as a PIL RGB image of size x size pixels (deterministic)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng([SEED, i])
    yy, xx = _grid(size)
    kind = rng.integers(4)
    if kind == 0:  # a grating at a random angle and frequency
        angle, freq = rng.uniform(0, math.pi), rng.uniform(2, 10)
        t = 0.5 + 0.5 * np.sin(
            2 * math.pi * freq * (xx * math.cos(angle) + yy * math.sin(angle))
            + rng.uniform(0, 6.3)
        )
    elif kind == 1:  # a checkerboard of n x n cells
        n = rng.integers(2, 9)
        t = ((xx * n).astype(int) + (yy * n).astype(int)) % 2
    elif kind == 2:  # rings around a random centre
        cx, cy, freq = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(2, 8)
        t = 0.5 + 0.5 * np.cos(2 * math.pi * freq * np.hypot(xx - cx, yy - cy))
    else:  # blurred blobs: coarse noise, smoothly upsampled
        coarse = Image.fromarray((rng.random((6, 6)) * 255).astype(np.uint8))
        t = np.asarray(coarse.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255
    low, high = rng.integers(0, 256, (2, 3)).astype(np.float32)
    pixels = low + t[..., None].astype(np.float32) * (high - low)
    pixels += 4 * rng.standard_normal((size, size, 3), dtype=np.float32)  # grain
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(1, 4)):
        x0, y0 = rng.integers(0, size - 8, 2)
        w, h = rng.integers(8, size // 2, 2)
        box = [int(x0), int(y0), int(min(size - 1, x0 + w)), int(min(size - 1, y0 + h))]
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = rng.integers(3)
        if shape == 0:
            draw.ellipse(box, fill=colour)
        elif shape == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon(
                [(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=colour
            )
    return img


@functools.lru_cache(maxsize=4)
def _grid(size):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return yy, xx
