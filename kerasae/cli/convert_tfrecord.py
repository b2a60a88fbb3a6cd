"""`kerasae convert-tfrecord SOURCE OUT_DIR`: an image folder or array as sharded TFRecords."""

import os
import sys

from kerasae.cli import add_verbosity, verbosity
from kerasae.data.options import parse_image_size
from kerasae.errors import KerasaeError


def register(sub):
    p = sub.add_parser(
        "convert-tfrecord",
        help="write an image folder or a .npy/.npz of uint8 images as sharded "
        "TFRecord files (PNG `image` and `key` features) to train from",
    )
    p.add_argument("source", help="an image folder (read recursively) or a .npy/.npz file")
    p.add_argument("out_dir", help="the folder for OUT_DIR/data-00000-of-0000N.tfrecord")
    p.add_argument(
        "--shards",
        type=int,
        help="number of files (default: one per 10,000 records, so workers can shard by file)",
    )
    p.add_argument(
        "--image-size",
        metavar="H,W",
        help="resize every image to H x W (default: keep; a folder of mixed sizes needs it)",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        help="1 (greyscale) or 3 (RGB) (default: those of the first image)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")

    add_verbosity(p)
    p.set_defaults(func=cmd_convert_tfrecord, check=check)


def check(args):
    """The source path, --shards and --image-size, before TensorFlow."""
    if not os.path.exists(args.source):
        raise KerasaeError(f"{args.source} does not exist; check the path")
    if args.shards is not None and args.shards < 1:
        raise KerasaeError(f"--shards must be a positive integer, got {args.shards}")
    args.size = parse_image_size(args.image_size) if args.image_size else None


def cmd_convert_tfrecord(args):
    from kerasae.data.tfrecord import convert  # imports TensorFlow: only when used

    def progress(n):
        print(f"\r{n} records", end="", flush=True)

    quiet = verbosity(args) == 0
    live = sys.stdout.isatty() and not quiet  # a count that rewrites its own line
    summary = convert(
        args.source,
        args.out_dir,
        shards=args.shards,
        image_size=args.size,
        channels=args.channels,
        overwrite=args.overwrite,
        progress=progress if live else None,
    )
    if not quiet:
        h, w, c = summary["input_shape"]
        skipped = f", {summary['skipped']} skipped" if summary["skipped"] else ""
        start = "\r" if live else ""
        print(
            f"{start}wrote {summary['records']} images ({h}x{w}x{c}{skipped}) to "
            f"{summary['shards']} TFRecord file(s) in {summary['out']}"
        )
    return 0
