"""onnxruntime sessions: TensorRT, CUDA or the CPU, and always say which one is active.

onnxruntime falls back to the CPU silently when an accelerator provider cannot start
(missing cuDNN or TensorRT libraries, wrong driver), so the provider actually in use is
read back from `session.get_providers()` rather than assumed from what was requested. On
CUDA (and TensorRT), batches run through IO binding: the input is copied to the device
once and outputs are bound on the device, instead of onnxruntime's per-call staging copies.

Every session makes one warm-up call (a batch of one zero example) when it loads, so the
first real request does not pay for onnxruntime's lazy allocations. A server turns the
thread pool's spin-waiting off (`configure(spinning=False)`): spinning threads burn the
cores that the event loop and the other requests need between calls.
"""

import warnings

import numpy as np

from kerasae_runtime.manifest import ExportError

TENSORRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
PREFERENCE = (TENSORRT, CUDA, CPU)  # the fastest first; onnxruntime assigns nodes in order
DEVICES = ("auto", "cuda", "cpu")
_DEFAULTS = {"spinning": None, "warmup": True}  # None: onnxruntime's own default (spin)


def configure(spinning=None, warmup=None):
    """Process-wide defaults for sessions opened afterwards (the server sets spinning=False
    before it loads the parts)."""
    if spinning is not None:
        _DEFAULTS["spinning"] = bool(spinning)
    if warmup is not None:
        _DEFAULTS["warmup"] = bool(warmup)


def available_providers():
    import onnxruntime as ort

    return list(ort.get_available_providers())


def requested_providers(device):
    if device not in DEVICES:
        raise ExportError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    available = available_providers()
    if device == "cuda" and CUDA not in available:
        raise ExportError(
            "device='cuda' but this onnxruntime has no CUDAExecutionProvider; "
            "install onnxruntime-gpu (kerasae-runtime[gpu]) or use device='cpu'"
        )
    if device == "cpu":
        return [CPU]
    return [p for p in PREFERENCE if p in available or p == CPU]


def _warmup_shape(node):
    return [d if isinstance(d, int) and d > 0 else 1 for d in node.shape]


class Session:
    """One ONNX file: `run(x) -> {output name: array}` in fixed-size chunks."""

    def __init__(
        self,
        path,
        input_name,
        output_names,
        device="auto",
        threads=None,
        spinning=None,
        warmup=None,
    ):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        spinning = _DEFAULTS["spinning"] if spinning is None else spinning
        if spinning is False:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        wanted = requested_providers(device)
        try:
            self.session = ort.InferenceSession(path, sess_options=options, providers=wanted)
        except Exception as exc:
            raise ExportError(
                f"onnxruntime cannot load {path}: {str(exc).splitlines()[0]}"
            ) from None
        self.provider = self.session.get_providers()[0]
        if wanted[0] != CPU and self.provider == CPU:
            message = (
                f"onnxruntime could not start the {wanted[0]} for {path} and fell "
                "back to the CPU (check the CUDA, cuDNN and TensorRT libraries)"
            )
            if device == "cuda":
                raise ExportError(message)
            warnings.warn(message, stacklevel=2)
        self.input_name = input_name
        self.output_names = list(output_names)
        if _DEFAULTS["warmup"] if warmup is None else warmup:
            node = self.session.get_inputs()[0]
            self.run(np.zeros(_warmup_shape(node), dtype=np.float32))

    def _run_chunk(self, x):
        if self.provider in (CUDA, TENSORRT) and len(x) > 1:
            import onnxruntime as ort

            binding = self.session.io_binding()
            binding.bind_ortvalue_input(
                self.input_name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
            )
            for name in self.output_names:
                binding.bind_output(name, "cuda")
            self.session.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()
        return self.session.run(self.output_names, {self.input_name: x})

    def run(self, x, batch_size=1024):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if len(x) == 0:
            raise ExportError("no examples given (the input array is empty)")
        chunks = [self._run_chunk(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        return {
            name: np.concatenate([c[k] for c in chunks])
            for k, name in enumerate(self.output_names)
        }
