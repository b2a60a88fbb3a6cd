"""A .csv of numeric columns: parsed in one streaming pass straight to float32, min-max
scaled with the training split's statistics (saved in the run).
"""

import csv
import os

import numpy as np

from kerasae.data.memory import _check_finite, _split
from kerasae.errors import KerasaeError


def _load_csv(path, test_fraction, scaling):
    data = _read_csv(path)
    name = os.path.basename(path)
    ds = _split(data, None, test_fraction, name)
    train, test = ds._store["train"], ds._store["test"]
    if scaling is None:  # statistics of the training split only: one pass, no copy
        scaling = {
            "kind": "minmax",
            "min": train.min(axis=0).tolist(),
            "max": train.max(axis=0).tolist(),
        }
    ds.scaling = scaling
    for x in (train, test):
        _scale_in_place(x, scaling)
    return ds


def _scale_in_place(x, scaling):
    kind = scaling["kind"]
    if kind == "divide":
        x /= np.float32(scaling["scale"])
    elif kind == "minmax":
        lo = np.asarray(scaling["min"], dtype="float32")
        span = np.asarray(scaling["max"], dtype="float32") - lo
        x -= lo
        x /= np.where(span > 0, span, 1.0).astype("float32")


def _read_csv(path, chunk=65536):
    """A CSV of numeric columns as float32, parsed in one streaming pass (rows are
    converted chunk by chunk, never held as strings)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = (r for r in csv.reader(f) if r and any(c.strip() for c in r))
        first = next(rows, None)
        if first is None:
            raise KerasaeError(f"{path} is empty; give a CSV of numeric columns")
        header = None
        try:
            [float(c) for c in first]
        except ValueError:
            header, first = first, None
        width = len(header or first)
        chunks, block, line = [], [], 1 + bool(header)
        for row in _chain(first, rows):
            if len(row) != width:
                raise KerasaeError(
                    f"{path} line {line}: {len(row)} columns, "
                    f"expected {width}; every row needs the same columns"
                )
            block.append(row)
            line += 1
            if len(block) == chunk:
                chunks.append(_parse_block(block, path, header, line - len(block)))
                block = []
        if block:
            chunks.append(_parse_block(block, path, header, line - len(block)))
    data = np.concatenate(chunks) if chunks else np.empty((0, width), "float32")
    _check_finite(data, path)
    return data


def _chain(first, rows):
    if first is not None:
        yield first
    yield from rows


def _parse_block(block, path, header, first_line):
    try:
        return np.asarray(block, dtype="float32")
    except ValueError:
        pass
    for i, row in enumerate(block):  # find the offending cell for the message
        for j, cell in enumerate(row):
            try:
                float(cell)
            except ValueError:
                col = header[j] if header else f"column {j + 1}"
                raise KerasaeError(
                    f"{path}: {col!r} is not numeric ({cell!r} on line "
                    f"{first_line + i}); drop or encode that column"
                ) from None
    raise KerasaeError(f"{path}: rows from line {first_line} cannot be read as numbers")
