"""`kerasae evaluate RUN_DIR`: test reconstruction metrics of a finished run."""
import json


def register(sub):
    p = sub.add_parser("evaluate", help="test reconstruction MSE and PSNR of a run")
    p.add_argument("run_dir")
    p.add_argument("--dataset", help="evaluate on other data of the same shape")
    p.add_argument("--json", action="store_true",
                   help="print the metrics as one JSON object on the last line")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args):
    from kerasae.runs import evaluate

    metrics = evaluate(args.run_dir, dataset=args.dataset)
    if args.json:
        print(json.dumps(metrics, sort_keys=True))
    else:
        print(f"{metrics['model']} on {metrics['dataset']} ({metrics['n_test']} test examples): "
              f"test MSE {metrics['test_mse']:.5f}, PSNR {metrics['psnr']:.2f} dB, "
              f"model loss {metrics['test_loss']:.5f}")
    return 0
