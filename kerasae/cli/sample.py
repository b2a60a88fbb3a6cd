"""`kerasae sample RUN_DIR [-n N] [--out FILE.png]`: a grid of the model's prior samples."""
import os


def register(sub):
    p = sub.add_parser("sample", help="write a PNG grid of samples from a generative run")
    p.add_argument("run_dir")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="PNG file (default RUN_DIR/samples/samples.png)")
    p.set_defaults(func=cmd_sample)


def cmd_sample(args):
    from kerasae.errors import KerasaeError
    from kerasae.plots import save_grid
    from kerasae.runs import load_run

    if args.n <= 0:
        raise KerasaeError(f"-n must be a positive integer, got {args.n}")
    out = args.out or os.path.join(args.run_dir, "samples", "samples.png")
    if not out.lower().endswith(".png"):
        raise KerasaeError(f"--out {out} must be a .png file")
    config, model = load_run(args.run_dir)
    images = model.sample(args.n, seed=args.seed)
    save_grid(images, out, title=f"{config['model']}: {args.n} prior samples")
    print(f"wrote {out}")
    return 0
