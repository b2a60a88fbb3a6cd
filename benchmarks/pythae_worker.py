"""pythae 0.1.2's side of `benchmarks/pythae_side_by_side.py`: one family, trained and measured.

    PYTHAE_PYTHON benchmarks/pythae_worker.py --family vae_iaf --data DIR --out ROW.json

Runs under pythae's own interpreter (CPU PyTorch), so it imports nothing from kerasae.
`DIR` holds x_train.npy and x_test.npy (float32 in [0, 1], NHWC), written by the parent
from `kerasae.data.sources.load_dataset("fashion_mnist")`, so both sides see the same
images. The model is pythae's, at its default MLP networks (one hidden layer of 512 in
encoder and decoder: `Encoder_VAE_MLP`, `Decoder_AE_MLP`) and its family defaults, with
reconstruction_loss="bce" (kerasae's default Bernoulli likelihood, so that the two log
p(x) are in the same units), trained by pythae's own trainer (Adam; the coupled
three-optimizer trainer for vaegan).

Figures: test MSE per pixel of the decoder at the deterministic code (the posterior mean,
through the flow for vae_iaf, normalised for svae: what kerasae's `reconstruct` decodes),
the same of pythae's `reconstruct` (one posterior draw: the forward pass), log p(x) by
pythae's `get_nll` per image (k draws), parameters, training wall and process-CPU
seconds.
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch

HAS_NLL = {"vae_iaf", "miwae", "vaegan", "svae", "rhvae"}  # pythae defines or inherits get_nll


def build(family, input_dim, latent_dim):
    """(model, trainer class, trainer config class) of pythae for `family`."""
    import pythae.models as pm
    from pythae.trainers import (
        BaseTrainer,
        BaseTrainerConfig,
        CoupledOptimizerAdversarialTrainer,
        CoupledOptimizerAdversarialTrainerConfig,
    )

    common = {"input_dim": input_dim, "latent_dim": latent_dim, "reconstruction_loss": "bce"}
    models = {
        "vae_iaf": (pm.VAE_IAF, pm.VAE_IAF_Config),
        "miwae": (pm.MIWAE, pm.MIWAEConfig),
        "vaegan": (pm.VAEGAN, pm.VAEGANConfig),
        "svae": (pm.SVAE, pm.SVAEConfig),
        "rhvae": (pm.RHVAE, pm.RHVAEConfig),
    }
    model_cls, config_cls = models[family]
    model = model_cls(config_cls(**common))
    if family == "vaegan":
        return model, CoupledOptimizerAdversarialTrainer, CoupledOptimizerAdversarialTrainerConfig
    return model, BaseTrainer, BaseTrainerConfig


def deterministic_code(model, family, x):
    """The code kerasae's `reconstruct` would decode: the posterior mean (through the IAF
    flow for vae_iaf; the normalised mean direction for svae)."""
    out = model.encoder(x)
    mu = out.embedding
    if family == "svae":
        return mu / mu.norm(dim=-1, keepdim=True)
    if family == "vae_iaf":
        return model.iaf_flow.inverse(mu).out
    return mu


#: rhvae's forward pass at test time computes its metric against 12,800 training centroids
#: at each leapfrog step, (batch, 12,800, d, d) floats: about 0.4 s per image on one core,
#: so its one-draw MSE is measured on the first 1,000 test images, not all 10,000
FORWARD_EXAMPLES = {"rhvae": 1000}


def reconstructions(model, family, x, batch=500):
    """(decoded deterministic codes of all of x, pythae's own `reconstruct` of the first
    FORWARD_EXAMPLES[family] images or all), numpy, in x's layout."""
    det, fwd = [], []
    from pythae.data.datasets import DatasetOutput

    if family == "rhvae":  # its metric at test time holds (batch, 12,800 centroids, d, d)
        batch = 50
    n_forward = FORWARD_EXAMPLES.get(family, len(x))
    for i in range(0, len(x), batch):
        b = x[i : i + batch]
        with torch.no_grad():
            det.append(model.decoder(deterministic_code(model, family, b)).reconstruction)
        if i >= n_forward:
            continue
        # rhvae's leapfrog steps take gradients of the Hamiltonian, even at test time
        with torch.enable_grad() if family == "rhvae" else torch.no_grad():
            fwd.append(model(DatasetOutput(data=b)).recon_x.detach())
    fwd = torch.cat(fwd)[:n_forward]
    return (
        torch.cat(det).reshape(tuple(x.shape)).numpy(),
        fwd.reshape((len(fwd), *x.shape[1:])).numpy(),
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--family", required=True, choices=sorted(HAS_NLL))
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latent-dim", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch's intra-op threads (default: torch's)")
    parser.add_argument("--ll-k", type=int, default=1000)
    parser.add_argument("--ll-examples", type=int, default=1000)
    args = parser.parse_args(argv)

    from pythae.data.datasets import BaseDataset

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    # NHWC -> NCHW: one channel, so the flattened pixel order is the same on both sides
    x_train = torch.from_numpy(np.load(os.path.join(args.data, "x_train.npy"))).permute(0, 3, 1, 2)
    x_test = torch.from_numpy(np.load(os.path.join(args.data, "x_test.npy"))).permute(0, 3, 1, 2)
    input_dim = tuple(x_train.shape[1:])
    model, trainer_cls, config_cls = build(args.family, input_dim, args.latent_dim)
    lr = (
        {"encoder_learning_rate": args.lr, "decoder_learning_rate": args.lr}
        | {"discriminator_learning_rate": args.lr}
        if args.family == "vaegan"
        else {"learning_rate": args.lr}
    )
    with tempfile.TemporaryDirectory() as out_dir:
        config = config_cls(
            output_dir=out_dir,
            num_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            seed=args.seed,
            no_cuda=True,
            keep_best_on_train=True,  # without an eval set 0.1.2 keeps no best model otherwise
            **lr,
        )
        train = BaseDataset(x_train.contiguous(), torch.zeros(len(x_train)))
        trainer = trainer_cls(model=model, train_dataset=train, training_config=config)
        wall, cpu = time.perf_counter(), time.process_time()
        trainer.train()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    model.eval()
    x = x_test.contiguous()
    det, fwd = reconstructions(model, args.family, x)
    xn = x.numpy()
    row = {
        "library": "pythae 0.1.2",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "model": type(model).__name__,
        "config": {
            k: v
            for k, v in vars(model.model_config).items()
            if isinstance(v, (int, float, str, bool, type(None)))
        },
        "mse": float(np.mean((det - xn) ** 2)),
        "mse_forward": float(np.mean((fwd - xn[: len(fwd)]) ** 2)),
        "mse_forward_examples": len(fwd),
        "params": int(sum(p.numel() for p in model.parameters())),
        "seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "samples_per_cpu_second": round(args.epochs * len(x_train) / cpu, 1),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
    }
    write_row(args.out, row)  # kept if the parent stops the log p(x) loop (--pythae-timeout)
    if args.ll_k:
        torch.manual_seed(args.seed)
        per = []
        start = time.perf_counter()
        for i in range(min(args.ll_examples, len(x))):
            # get_nll returns the mean over its images of log p(x) (not its negative); one
            # image per call keeps the per-image values for a paired comparison
            with torch.enable_grad() if args.family == "rhvae" else torch.no_grad():
                per.append(float(model.get_nll(x[i : i + 1], n_samples=args.ll_k, batch_size=100)))
            if len(per) > 1:  # the row so far: the first len(per) test images
                a = np.asarray(per)
                row.update(
                    ll=float(a.mean()),
                    ll_se=float(a.std(ddof=1) / np.sqrt(len(a))),
                    ll_k=args.ll_k,
                    ll_examples=len(a),
                    ll_seconds=round(time.perf_counter() - start, 1),
                    ll_per_example=[round(float(v), 3) for v in a],
                    ll_method="pythae get_nll (importance sampling, posterior proposal)",
                )
                write_row(args.out, row)
    print(json.dumps({k: v for k, v in row.items() if k != "ll_per_example"}))


def write_row(path, row):
    """Replace `path` with `row` as JSON in one step (a reader never sees half a file)."""
    with open(path + ".tmp", "w") as f:
        json.dump(row, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    main()
