"""A real Triton Inference Server serving a kerasae decoder.onnx, for benchmarks/serve_load.py.

Runs in its own venv, made with Debian's system Python 3.11 (the pyenv interpreter breaks
the Python backend's stub):

    /usr/bin/python3 -m venv /tmp/triton-venv
    /tmp/triton-venv/bin/pip install nvidia-pytriton onnxruntime numpy
    /tmp/triton-venv/bin/python benchmarks/triton_decoder.py EXPORT_DIR --port 8000

nvidia-pytriton's wheel bundles `tritonserver` (2.51 with pytriton 0.7) and its Python
backend; the model's function runs onnxruntime on the decoder, behind Triton's dynamic
batcher (--max-batch rows, --delay-us queue delay). It answers the Open Inference
Protocol, so the same wrk script drives it and `kerasae-runtime serve`.
"""

import argparse
import json
import os

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-batch", type=int, default=256)
    parser.add_argument("--delay-us", type=int, default=500)
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op (0: all)")
    args = parser.parse_args()
    with open(os.path.join(args.export_dir, "manifest.json")) as f:
        info = json.load(f)["parts"]["decoder"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as serve
    session = ort.InferenceSession(
        os.path.join(args.export_dir, info["files"]["onnx"]), options, ["CPUExecutionProvider"]
    )
    name = info["inputs"][0]["name"]

    @batch
    def infer(**inputs):
        return {"x_hat": session.run(None, {name: inputs[name].astype(np.float32)})[0]}

    config = TritonConfig(
        http_port=args.port, grpc_port=args.port + 1, metrics_port=args.port + 2, log_verbose=0
    )
    with Triton(config=config) as triton:
        triton.bind(
            model_name="decoder",
            infer_func=infer,
            inputs=[
                Tensor(name=name, dtype=np.float32, shape=tuple(info["inputs"][0]["shape"][1:]))
            ],
            outputs=[
                Tensor(
                    name="x_hat", dtype=np.float32, shape=tuple(info["outputs"][0]["shape"][1:])
                )
            ],
            config=ModelConfig(
                max_batch_size=args.max_batch,
                batcher=DynamicBatcher(max_queue_delay_microseconds=args.delay_us),
            ),
            strict=False,
        )
        triton.serve()


if __name__ == "__main__":
    main()
