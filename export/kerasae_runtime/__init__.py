"""kerasae-runtime: run kerasae exports with onnxruntime, without TensorFlow.

    from kerasae_runtime import Decoder, Encoder, Autoencoder
    images = Decoder.load("runs/vae/export").generate(64, seed=0)
    z = Encoder.load("runs/vae/export").encode(x)
    scores = Autoencoder.load("runs/vae/export").score(x)

Reads the `manifest.json` written by `kerasae export`, verifies the SHA-256 of each file
before loading it, and picks onnxruntime's CUDA provider when it is available.
"""

from kerasae_runtime.manifest import ExportError
from kerasae_runtime.parts import Autoencoder, Decoder, Encoder, Scorer

__version__ = "0.2.0"

__all__ = ["Autoencoder", "Decoder", "Encoder", "ExportError", "Scorer", "__version__"]
