"""TensorFlow's oneDNN graph pass on by default, on every x86 CPU.

TensorFlow 2.21 turns its oneDNN rewrite (`_MklNative*` convolutions and matmuls, fused
with their bias and activation) on by default only on CPUs with AVX-512 VNNI/BF16 or AMX;
elsewhere, AVX2+FMA AMD EPYC (Zen 3) among them, convolutions and matmuls stay Eigen's,
tiled over many small GEMM calls. Measured on a 2-core AMD EPYC (benchmarks/roofline.py,
BENCHMARKS.md): the conv families' fit 1.5-2.0x faster with it on (conv_ae at batch 512:
344 -> 535 samples/s), the dense families' unchanged; conv_ae's test MSE after 128 steps
the same within seed noise (0.0204 with it on; 0.0204-0.0208 over two seeds off).

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is imported, so `import kerasae`
sets it first; a value the user set wins (`TF_ENABLE_ONEDNN_OPTS=0` restores TensorFlow's
own choice), and where TensorFlow was imported before kerasae nothing changes.
"""

import os
import sys

ENV = "TF_ENABLE_ONEDNN_OPTS"


def default_on():
    """Set TF_ENABLE_ONEDNN_OPTS=1 unless it is set or TensorFlow is already imported."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault(ENV, "1")
