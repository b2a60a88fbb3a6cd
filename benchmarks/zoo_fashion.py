"""The zoo on Fashion-MNIST: every family at its defaults, and at the peer's MLP networks.

    python benchmarks/zoo_fashion.py [--models vae,iwae,...] [--epochs 10] [--ll-k 1000]
    python benchmarks/zoo_fashion.py --mlp --models ae,vae,wae[variant=mmd],aae

Per model (latent 16, 10 epochs, batch 128, the family's own defaults), on the official
test split: test MSE and mean SSIM (Wang et al. 2004, 11x11 Gaussian window) of
`reconstruct`, the importance-sampled test log-likelihood (Burda et al. 2016, k draws per
image, on the first `--ll-examples` test images) and the encoder's ELBO (the same
estimate at k = 1: how good the posterior is as a proposal, Rainforth et al. 2018) where
the family has a posterior, the family's own diagnostic (active dimensions and the total
correlation of the aggregate posterior for VAEs, perplexity and codes used for vq_vae,
mean code activation for sparse_ae), parameters and training time.

`--mlp` trains the same families with `architecture="mlp", hidden_units=(512,)`: one
hidden layer of 512 in encoder and decoder, the networks at which pythae 0.1.2 was
measured on this machine (its test MSEs are in PEER). A model spec may carry
constructor arguments, and `lr` sets Adam's learning rate: `wae[variant=mmd,lr=0.001]`.
`--pilot` keeps its rows apart (benchmarks/results/zoo_fashion_pilots.json) and leaves
BENCHMARKS.md alone: what defaults were chosen from. Rows are kept in
benchmarks/results/zoo_fashion.json (one per model and network), so models can be
re-run a few at a time; the BENCHMARKS.md section is rebuilt from all of them.
"""

import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.report import (  # noqa: E402
    base_parser,
    load_results,
    machine,
    markdown_table,
    save_results,
    update_section,
)

NAME = "zoo_fashion"
DEFAULT_MODELS = "vae,iwae,beta_tcvae,factor_vae,info_vae,vamp,rae,sparse_ae,vq_vae,conv_ae,ae"
#: test MSE of pythae 0.1.2 (torch 2.13, CPU) at one hidden layer of 512, latent 16,
#: 10 epochs, batch 128, Adam 1e-3, measured on this machine (issue 17)
PEER = {"ae": 0.01085, "vae": 0.02602, "wae[variant=mmd]": 0.01114, "aae": 0.01217}
MLP = {"architecture": "mlp", "hidden_units": (512,)}
#: log p(x) is estimated on the first this-many test images unless --ll-examples says
LL_EXAMPLES = 1000


def parse_spec(spec):
    """'wae[variant=mmd]' -> ('wae', {'variant': 'mmd'})."""
    from kerasae.params import parse_value

    match = re.fullmatch(r"([\w:.-]+)(?:\[(.*)\])?", spec.strip())
    if not match:
        raise SystemExit(f"bad model spec {spec!r}; write NAME or NAME[key=value,...]")
    kwargs = {}
    for item in filter(None, (match.group(2) or "").split(",")):
        key, _, value = item.partition("=")
        kwargs[key.strip()] = parse_value(value)
    return match.group(1), kwargs


def split_specs(text):
    """Split on commas outside brackets."""
    return [s for s in re.split(r",(?![^\[]*\])", text) if s.strip()]


def network_kwargs(cls, mlp):
    """The peer's networks, as far as the family's constructor takes them."""
    from kerasae.params import signature_params

    if not mlp:
        return {}
    known = signature_params(cls)
    return {k: v for k, v in MLP.items() if k in known}


#: posteriors that are not N(mean, exp(log_var)): svae's encoder gives a direction and a
#: concentration, poincare_vae's a wrapped normal on the ball (their KL per dimension and
#: Gaussian TC would mean nothing)
NOT_GAUSSIAN = ("svae", "poincare_vae")


def diagnostics(model, x):
    """The family's own figures on test images `x` (a dict of named numbers)."""
    from kerasae.probability import divergences

    out = {}
    gaussian = getattr(model, "registered_name", "") not in NOT_GAUSSIAN
    if hasattr(model, "encode_distribution") and gaussian:
        mean, log_var = model.encode_distribution(x)
        kl = divergences.kl_gaussian(mean, log_var, axis=0) / len(mean)  # per dimension
        out["active_dims"] = int(np.sum(kl > 0.01))
        z = mean + np.exp(0.5 * log_var) * np.random.default_rng(0).standard_normal(mean.shape)
        out["tc"] = divergences.gaussian_total_correlation(z)
    if hasattr(model, "encode_indices"):
        idx = model.encode_indices(x).reshape(-1)
        counts = np.bincount(idx, minlength=model.quantizer.num_embeddings)
        p = counts / counts.sum()
        out["perplexity"] = float(np.exp(-np.sum(p[p > 0] * np.log(p[p > 0]))))
        out["codes_used"] = float(np.mean(counts > 0))
    if hasattr(model, "sample_prior") and not hasattr(model, "encode_distribution"):
        # aae, wae: how close the deterministic codes are to the prior
        codes = model.encode(x[:2000])
        out["mmd"] = float(divergences.mmd(codes, model.sample_prior(len(codes), seed=0)))
    if getattr(model, "registered_name", "") == "sparse_ae":
        out["mean_activation"] = float(np.mean(model.encode(x)))
        out["rho"] = float(model.rho)
    return out


def run(spec, data, args):
    import keras

    import kerasae
    from kerasae.data.pipeline import make_tf_dataset
    from kerasae.models.registry import get_model_class

    name, kwargs = parse_spec(spec)
    cls = get_model_class(name)
    lr = kwargs.pop("lr", None)
    kwargs = {**network_kwargs(cls, args.mlp), **kwargs}
    keras.utils.set_random_seed(args.seed)
    # a spec may set latent_dim itself (vq_vae's 7x7 grid: 3136 = 49 x 64-d codes)
    model = kerasae.create_model(
        name, input_shape=data.input_shape, **{"latent_dim": args.latent_dim, **kwargs}
    )
    model.compile(optimizer=None if lr is None else keras.optimizers.Adam(lr))
    start = time.perf_counter()
    model.fit(
        make_tf_dataset(data.x_train, args.batch_size, seed=args.seed),
        epochs=args.epochs,
        verbose=2,
    )
    seconds = time.perf_counter() - start
    x = data.x_test
    x_hat = model.reconstruct(x)
    row = {
        "model": spec,
        "networks": "mlp (512,)" if args.mlp else "defaults",
        "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
        "mse": float(np.mean((x_hat - x) ** 2)),
        "ssim": mean_ssim(x, x_hat),
        "params": int(model.count_params()),
        "seconds": round(seconds, 1),
        "epochs": args.epochs,
        "learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        **diagnostics(model, x),
    }
    from kerasae.evaluation.likelihood import has_posterior, log_likelihood

    if has_posterior(model) and args.ll_k:
        ll = log_likelihood(model, x[: args.ll_examples], k=args.ll_k, seed=0)
        elbo = log_likelihood(model, x[: args.ll_examples], k=1, seed=0)
        row.update(
            elbo=float(elbo["mean"]),
            elbo_per_example=[round(float(v), 3) for v in elbo["log_px"]],
            ll=float(ll["mean"]),
            ll_se=float(ll["stderr"]),
            ll_k=args.ll_k,
            ll_examples=int(len(x[: args.ll_examples])),
            # per image, so two models compare paired on the same images
            ll_per_example=[round(float(v), 3) for v in ll["log_px"]],
        )
    return row


def mean_ssim(x, x_hat, batch=1000):
    """Mean SSIM of reconstructions against the images (tf.image.ssim: 11x11 Gaussian
    window, sigma 1.5, grey levels in [0, 1])."""
    import tensorflow as tf

    values = [
        tf.image.ssim(
            tf.constant(x[i : i + batch], "float32"),
            tf.constant(np.clip(x_hat[i : i + batch], 0, 1), "float32"),
            max_val=1.0,
        ).numpy()
        for i in range(0, len(x), batch)
    ]
    return float(np.mean(np.concatenate(values)))


def _fmt_diag(r):
    parts = []
    if "active_dims" in r and r["model"].split("[")[0] not in NOT_GAUSSIAN:
        parts.append(f"active {r['active_dims']}, TC {r['tc']:.2f}")
    if "perplexity" in r:
        parts.append(f"perplexity {r['perplexity']:.0f}, codes used {r['codes_used']:.0%}")
    if "mmd" in r:
        parts.append(f"MMD to prior {r['mmd']:.4f}")
    if "mean_activation" in r:
        parts.append(f"mean activation {r['mean_activation']:.4f} (rho {r['rho']:g})")
    return "; ".join(parts) or "-"


def paired(a, b, key="ll_per_example"):
    """' (paired on the same images: +d ± se)' for two rows' per-image figures."""
    if key not in a or key not in b or len(a[key]) != len(b[key]):
        return ""
    diff = np.asarray(a[key]) - np.asarray(b[key])
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    return f" (paired on the same images: {diff.mean():+.2f} ± {se:.2f})"


def ll_claim(by, name, base, label):
    """'- LABEL has a higher test log-likelihood than BASE: ...' or None; a paired
    difference within two standard errors of zero is said to be so."""
    a, b = by.get(name), by.get(base)
    if not (a and b and "ll" in a and "ll" in b):
        return None
    verdict = "holds" if a["ll"] > b["ll"] else "does NOT hold"
    if "ll_per_example" in a and "ll_per_example" in b:
        diff = np.asarray(a["ll_per_example"]) - np.asarray(b["ll_per_example"])
        if abs(diff.mean()) < 2 * diff.std(ddof=1) / np.sqrt(len(diff)):
            verdict += ", within two standard errors of no difference"
    return (
        f"- {label} has a higher test log-likelihood than {base}: {a['ll']:.2f} vs "
        f"{b['ll']:.2f} nats{paired(a, b)}: {verdict}."
    )


def rainforth_claims(by):
    """Rainforth et al. 2018: a tighter bound (iwae) gives a better generative model but a
    worse encoder (a lower ELBO); miwae, piwae and ciwae trade the two: an encoder ELBO
    above iwae's and a log-likelihood above vae's."""
    vae, iwae = by.get("vae"), by.get("iwae")
    if not (vae and iwae and "elbo" in iwae and "elbo" in vae):
        return []
    lines = [
        f"- iwae's encoder is worse than vae's (ELBO {iwae['elbo']:.2f} vs {vae['elbo']:.2f} "
        f"nats{paired(iwae, vae, 'elbo_per_example')}) while its log p(x) is higher "
        f"({iwae['ll']:.2f} vs {vae['ll']:.2f}): "
        f"{'holds' if iwae['elbo'] < vae['elbo'] and iwae['ll'] > vae['ll'] else 'does NOT hold'}."
    ]
    for name in ("miwae", "piwae", "ciwae"):
        r = by.get(name)
        if not (r and "elbo" in r and "ll" in r):
            continue
        ok = r["elbo"] > iwae["elbo"] and r["ll"] > vae["ll"]
        lines.append(
            f"- {name} trades encoder quality for likelihood: ELBO {r['elbo']:.2f} vs iwae "
            f"{iwae['elbo']:.2f}{paired(r, iwae, 'elbo_per_example')}, log p(x) "
            f"{r['ll']:.2f} vs vae {vae['ll']:.2f}{paired(r, vae)}: "
            f"{'holds' if ok else 'does NOT hold'}."
        )
    return lines


CONV_AE_MSE = 0.00878  # conv_ae's test MSE at 10 epochs (BENCHMARKS.md, reconstruction)


def claims(default):
    """The papers' claims, each with its measured figures (a list of markdown lines)."""
    by = {r["model"]: r for r in default}
    lines = []
    vae = by.get("vae")
    for name in ("iwae", "vae_iaf", "vae_linnf", "hvae"):  # a higher test log-likelihood
        line = ll_claim(by, name, "vae", {"iwae": "iwae (k=5)"}.get(name, name))
        if line:
            lines.append(line)
    for d in sorted({m.partition("=")[2].rstrip("]") for m in by if m.startswith("svae[")}):
        line = ll_claim(by, f"svae[latent_dim={d}]", f"vae[latent_dim={d}]", f"svae (d = {d})")
        if line:
            lines.append(line)
    lines.extend(rainforth_claims(by))
    msssim = by.get("msssim_vae")
    if vae and msssim and "ssim" in vae and "ssim" in msssim:
        ok = msssim["ssim"] > vae["ssim"]
        lines.append(
            f"- msssim_vae's reconstructions have a higher SSIM than vae's: "
            f"{msssim['ssim']:.4f} vs {vae['ssim']:.4f}: {'holds' if ok else 'does NOT hold'}."
        )
    if vae and "tc" in vae:
        for name in ("beta_tcvae", "factor_vae"):
            if name in by and "tc" in by[name]:
                ok = by[name]["tc"] < vae["tc"]
                lines.append(
                    f"- {name} has a lower total correlation than vae: "
                    f"{by[name]['tc']:.3f} vs {vae['tc']:.3f} nats (Gaussian TC): "
                    f"{'holds' if ok else 'does NOT hold'}."
                )
    vq = next((r for m, r in by.items() if m.startswith("vq_vae")), None)
    if vq and "codes_used" in vq:
        ok = vq["mse"] < CONV_AE_MSE and vq["codes_used"] >= 0.5
        lines.append(
            f"- vq_vae reconstructs better than conv_ae ({vq['mse']:.5f} vs "
            f"{CONV_AE_MSE}) and uses at least half of its codebook "
            f"({vq['codes_used']:.0%}): {'holds' if ok else 'does NOT hold'}."
        )
    for name, sparse in by.items():
        if name.startswith("sparse_ae") and "mean_activation" in sparse:
            rel = abs(sparse["mean_activation"] - sparse["rho"]) / sparse["rho"]
            lines.append(
                f"- `{name}`'s mean code activation is within 20% of rho: "
                f"{sparse['mean_activation']:.4f} vs rho {sparse['rho']:g} "
                f"({rel:.0%} off): {'holds' if rel <= 0.2 else 'does NOT hold'}."
            )
    return lines


def pilot_section():
    """The pilots the MLP defaults were chosen from (rows of `--pilot` runs)."""
    pilots = load_results(NAME + "_pilots", {})
    # the bare names ran under the defaults of the day (ae 1e-3, aae 0.005, wae-mmd 0.1):
    # the explicit rows below repeat the last two, so only ae's is kept, relabelled
    then = {"ae": "ae[lr=0.001]", "aae": None, "wae[variant=mmd]": None}
    rows = [
        {**r, "model": then.get(r["model"], r["model"])}
        for r in pilots.values()
        if r["networks"] != "defaults" and r["model"].split("[")[0] in ("ae", "wae", "aae")
    ]
    rows = [r for r in rows if r["model"]]
    if not rows:
        return []
    table = markdown_table(
        ["setting (mlp (512,))", "test MSE", "pythae", "MMD to prior", "train s"],
        [
            [
                f"`{r['model']}`",
                f"{r['mse']:.5f}",
                f"{PEER[r['model'].split('[')[0]]:.5f}"
                if r["model"].split("[")[0] in PEER
                else f"{PEER['wae[variant=mmd]']:.5f}"
                if "variant=mmd" in r["model"]
                else "-",
                f"{r['mmd']:.4f}" if "mmd" in r else "-",
                f"{r['seconds']:.0f}",
            ]
            for r in sorted(rows, key=lambda r: r["model"])
        ],
    )
    return [
        "",
        "How the MLP defaults were chosen (`python benchmarks/zoo_fashion.py --pilot "
        "--mlp --ll-k 0 --models ...`, full 10-epoch runs, rows in "
        "`benchmarks/results/zoo_fashion_pilots.json`): `ae` Adam 2e-3 instead of 1e-3; "
        "for mlp networks `wae` (mmd) lambda 0.005 and `aae` lambda 0.00128, the weights "
        "pythae itself puts on these terms once its pixel-summed losses are rescaled to "
        "kerasae's per-pixel mean (conv networks keep their tuned 0.1 and 0.005). The "
        "lighter weights did not cost prior matching: the MMD between test codes and "
        "prior draws is no worse (the new defaults' MMD is in the table above).",
        "",
        table,
    ]


def side_by_side(side):
    """`side`'s ("pythae" or "kerasae") rows of benchmarks/pythae_side_by_side.py by family,
    those that were measured."""
    rows = {}
    for name, sides in load_results("pythae_side_by_side", {}).items():
        row = sides.get(side) if isinstance(sides, dict) else None
        if isinstance(row, dict) and "mse" in row:
            rows[name] = row
    return rows


def peer_figures():
    """pythae 0.1.2's figures at MLP (512,): PEER, and the rows of
    benchmarks/pythae_side_by_side.py (test MSE; log p(x) where it has one)."""
    return {**{name: {"mse": mse} for name, mse in PEER.items()}, **side_by_side("pythae")}


def peer_figure(name, peers):
    peer = peers.get(name)
    if not peer or "mse" not in peer:
        return "-"
    ll = f", log p(x) {peer['ll']:.2f}" if peer.get("ll") is not None else ""
    if ll and peer.get("ll_examples", LL_EXAMPLES) != LL_EXAMPLES:
        ll += f" (first {peer['ll_examples']} test images)"
    return f"{peer['mse']:.5f}{ll}"


def write(results):
    peers = peer_figures()
    rows = sorted(results.values(), key=lambda r: (r["networks"], r["model"]))
    default = [r for r in rows if r["networks"] == "defaults"]
    mlp = {r["model"]: r for r in rows if r["networks"] != "defaults"}
    # the side-by-side's kerasae rows are this script's `run` at the same MLP networks
    mlp_extra = {k: r for k, r in side_by_side("kerasae").items() if k not in mlp}
    table = markdown_table(
        [
            "model",
            "test MSE",
            "SSIM",
            "test log p(x) (nats)",
            "encoder ELBO",
            "diagnostic",
            "parameters",
            "train s",
            "kerasae at MLP (512,)",
            "pythae at MLP (512,)",
        ],
        [
            [
                f"`{r['model']}`",
                f"{r['mse']:.5f}",
                f"{r['ssim']:.4f}" if "ssim" in r else "-",
                f"{r['ll']:.2f} ± {r['ll_se']:.2f}" if "ll" in r else "-",
                f"{r['elbo']:.2f}" if "elbo" in r else "-",
                _fmt_diag(r),
                f"{r['params']:,}",
                f"{r['seconds']:.0f}",
                peer_figure(r["model"], {**mlp_extra, **mlp}),
                peer_figure(r["model"], peers),
            ]
            for r in default
        ],
    )
    extra = [r for name, r in mlp.items() if name not in {d["model"] for d in default}]
    mlp_table = (
        markdown_table(
            ["model", "MLP (512,) test MSE", "pythae", "diagnostic", "learning rate", "train s"],
            [
                [
                    f"`{r['model']}`",
                    f"{r['mse']:.5f}",
                    f"{PEER[r['model']]:.5f}" if r["model"] in PEER else "-",
                    _fmt_diag(r),
                    f"{r['learning_rate']:g}",
                    f"{r['seconds']:.0f}",
                ]
                for r in extra
            ],
        )
        if extra
        else ""
    )
    any_row = rows[0]
    ll = next((r for r in rows if "ll" in r), None)
    body = "\n".join(
        [
            "## The zoo: Fashion-MNIST, latent 16, 10 epochs, batch 128",
            "",
            "Commands (rows stored in `benchmarks/results/zoo_fashion.json`, each run replaces "
            "its own): `python benchmarks/zoo_fashion.py --models "
            f"{','.join(r['model'] for r in default)}` and `python benchmarks/zoo_fashion.py "
            f"--mlp --models {','.join(mlp)}`  ",
            f"Machine: {machine()} (CPU only, shared with other jobs: times are indicative).",
            "",
            table,
            "",
            f"Test MSE over all pixels of the 10,000 test images (epochs: {any_row['epochs']}). "
            + (
                f"log p(x): importance-sampled (k = {ll['ll_k']}, posterior as proposal) on the "
                f"first {ll['ll_examples']} test images, ± one standard error; grey levels under "
                "each family's likelihood (Bernoulli by default). "
                if ll
                else ""
            )
            + "Diagnostics on the test images: active dimensions (average KL > 0.01 nats), "
            "TC = the total correlation of a Gaussian with the covariance of one draw z ~ "
            "q(z|x) per test image (`kerasae.probability.gaussian_total_correlation`: linear "
            "dependence, nats; the mixture estimator is too biased in 16 dimensions to rank "
            "models), MMD between 2,000 test codes and prior draws for aae/wae, "
            "vq_vae's perplexity and fraction of its 512 codes used, sparse_ae's mean code "
            "activation. vq_vae's code is a 7x7 grid of 64-d vectors (latent_dim 3136), as its "
            'paper\'s; every other family has 16 latent dimensions. "MLP (512,)": the same '
            "family with one hidden layer of 512 in "
            "encoder and decoder (test MSE, and log p(x) at k = 1000 where it was measured; "
            "the families of `benchmarks/pythae_side_by_side.py` from its kerasae rows), "
            "pythae 0.1.2's figures beside it. "
            "SSIM: the mean over test images of tf.image.ssim (11x11 Gaussian window). "
            "Encoder ELBO: the same estimate at k = 1, the bound the posterior alone gives "
            "(Rainforth et al. 2018's measure of the inference network).",
            *(
                ["", "Older families at the peer's MLP networks:", "", mlp_table]
                if mlp_table
                else []
            ),
            *(
                ["", "The papers' claims, measured:", "", *claims(default)]
                if claims(default)
                else []
            ),
            *pilot_section(),
        ]
    )
    update_section(NAME, body)
    print(body)


def main(argv=None):
    parser = base_parser(__doc__)
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument(
        "--mlp", action="store_true", help="train at hidden_units=(512,) MLP networks (the peer's)"
    )
    parser.add_argument("--ll-k", type=int, default=1000)
    parser.add_argument("--ll-examples", type=int, default=LL_EXAMPLES)
    parser.add_argument(
        "--pilot",
        action="store_true",
        help="store rows in zoo_fashion_pilots.json; BENCHMARKS.md untouched",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="rebuild the BENCHMARKS.md section from the stored rows only",
    )
    args = parser.parse_args(argv)
    if args.report:
        return write(load_results(NAME, {}))

    from kerasae.data.sources import load_dataset

    data = load_dataset("fashion_mnist")
    store = NAME + ("_pilots" if args.pilot else "")
    results = load_results(store, {})
    for spec in split_specs(args.models):
        row = run(spec, data, args)
        print(row, flush=True)
        results[f"{row['networks']}|{spec}"] = row
        save_results(store, results)  # after each model: a long run keeps what it finished
        if not args.pilot:
            write(results)


if __name__ == "__main__":
    main()
