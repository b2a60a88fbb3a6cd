"""Regenerate tests/fixture/ (needs kerasae and TensorFlow; the tests themselves do not).

    cd export && ../.venv/bin/python tests/make_fixture.py

A tiny VAE (two-output encoder: z_mean, z_log_var) trained briefly on scikit-learn's 8x8
digits, exported as fp32 and fp16 ONNX (encoder, decoder, scorer, threshold.json), plus
`expected.npz`: raw inputs and what Keras computes for them (the score is the model's
own, the negative ELBO `kerasae detect` uses), so the runtime's tests check parity
without TensorFlow.
"""

import os
import shutil
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixture")


def main():
    from sklearn.datasets import load_digits

    from kerasae.export import export_run
    from kerasae.runs import TrainConfig, load_run, train

    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        train(
            TrainConfig(
                model="vae",
                epochs=5,
                latent_dim=2,
                batch_size=64,
                out=run,
                params={"hidden_units": [16]},
            ),
            verbose=0,
        )
        if os.path.isdir(OUT):
            shutil.rmtree(OUT)
        export_run(run, out=OUT, formats=("onnx",), fp16=True)
        _, model = load_run(run)
        raw = load_digits().images[:16, :, :, None].astype("float32")  # 0..16, like the run
        x = raw / 16.0
        z = model.encode(x)
        x_hat = model.decode(z)
        np.savez(
            os.path.join(HERE, "expected.npz"), raw=raw, z=z, x_hat=x_hat, score=model.score(x)
        )
    print(f"wrote {OUT} and expected.npz")


if __name__ == "__main__":
    main()
