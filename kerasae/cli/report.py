"""`kerasae report RUN_DIR`: one self-contained HTML page about a finished run."""

import warnings

from kerasae.cli import _quiet_tensorflow
from kerasae.errors import KerasaeError
from kerasae.report import report_path, write_report
from kerasae.runs.folder import read_run_config


def register(sub):
    p = sub.add_parser(
        "report",
        help="write one self-contained HTML page about a run: "
        "config, history, test metrics, grids, threshold, export",
    )
    p.add_argument("run_dir")
    p.add_argument("--out", help="HTML file (default RUN_DIR/report.html)")
    p.add_argument(
        "--no-evaluate",
        dest="evaluate",
        action="store_false",
        help="leave the test metrics out, and with them TensorFlow's import (by "
        "default they are computed, which takes seconds)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    # TensorFlow is imported below, once the run folder is known to be good
    p.set_defaults(func=cmd_report, needs_tensorflow=False)


def cmd_report(args):

    read_run_config(args.run_dir)  # a bad folder fails in a blink, before TensorFlow
    report_path(args.run_dir, args.out)
    metrics, note = None, "not evaluated (--no-evaluate)"
    if args.evaluate:
        # imports TensorFlow: only when used
        from kerasae.evaluation.reconstruction import evaluate

        _quiet_tensorflow(args.debug)
        try:
            metrics = evaluate(args.run_dir)
        except KerasaeError as exc:  # e.g. the data moved: the rest of the page still helps
            note = f"not evaluated: {exc}"
            warnings.warn(f"{note}; the report has no test metrics", stacklevel=2)
    out = write_report(args.run_dir, out=args.out, metrics=metrics, note=note)
    if not args.quiet:
        print(out)
    return 0
