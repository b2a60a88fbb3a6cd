"""`kerasae detect RUN_DIR --data PATH`: anomaly scores, decisions and figures
(kerasae.evaluation.anomaly)."""

import json
import os

from kerasae.cli import add_verbosity, verbosity
from kerasae.data.sources import resolve
from kerasae.errors import KerasaeError
from kerasae.runs.folder import read_run_config
from kerasae.runs.threshold import check_rule


def register(sub):
    p = sub.add_parser("detect", help="score data for anomalies with a trained run")
    p.add_argument("run_dir")
    p.add_argument(
        "--data",
        required=True,
        help="examples to score: .npy, .npz, .csv, an image folder or TFRecord "
        "files (streamed in file order, read at the run's --image-size and "
        "--channels; the CSV names each file), or a named dataset (its test "
        "split); raw values, scaled like the training data",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--threshold", type=float, help="flag scores above this value")
    group.add_argument(
        "--contamination",
        type=float,
        metavar="RATE",
        help="flag this fraction of the scored data (the highest scores)",
    )
    group.add_argument(
        "--percentile",
        type=float,
        metavar="P",
        help="threshold at the P-th percentile of the training scores",
    )
    p.add_argument(
        "--labels",
        help="0/1 per example (1 = anomaly): .npy, .csv or .txt; "
        "adds AUROC, average precision and a ROC curve",
    )
    p.add_argument(
        "--out",
        help="scores CSV (default RUN_DIR/detect/scores.csv); the figures are written next to it",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")

    add_verbosity(p)
    p.set_defaults(func=cmd_detect, check=check)


def check(args):
    """The run folder, the threshold rule and the data's path, before TensorFlow."""
    read_run_config(args.run_dir)
    check_rule(args.threshold, args.contamination, args.percentile)
    resolve(args.data)
    if args.labels and not os.path.isfile(args.labels):
        raise KerasaeError(f"--labels {args.labels} does not exist; check the path")


def cmd_detect(args):
    from kerasae.evaluation.anomaly import detect  # imports TensorFlow: only when used

    s = detect(
        args.run_dir,
        args.data,
        threshold=args.threshold,
        contamination=args.contamination,
        percentile=args.percentile,
        labels=args.labels,
        out=args.out,
    )
    if args.json:
        print(json.dumps(s, sort_keys=True))
        return 0
    print(f"{s['model']}: scored {s['n']} examples from {s['data']} ({s['score']})")
    print(
        f"threshold {s['threshold']:.6g} ({s['threshold_from']}): {s['n_flagged']} flagged "
        f"as anomalies ({s['n_flagged'] / s['n']:.1%})"
    )
    if "auroc" in s:
        print(
            f"AUROC {s['auroc']:.4f}, average precision {s['average_precision']:.4f} "
            f"({s['n_anomalies']} anomalies, {s['n_normal']} normal); ROC curve {s['roc_png']}"
        )

    if verbosity(args):
        print(f"wrote {s['scores_csv']} and {s['histogram_png']}")
    return 0
