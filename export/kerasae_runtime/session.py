"""onnxruntime sessions: CUDA when available, CPU otherwise, and always say which is active.

onnxruntime falls back to the CPU silently when the CUDA provider cannot start (missing
cuDNN, wrong driver), so the provider actually in use is read back from
`session.get_providers()` rather than assumed from what was requested. On CUDA, batches
run through IO binding: the input is copied to the device once and outputs are bound on
the device, instead of onnxruntime's per-call staging copies.
"""
import warnings

import numpy as np

from kerasae_runtime.manifest import ExportError

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
DEVICES = ("auto", "cuda", "cpu")


def available_providers():
    import onnxruntime as ort

    return list(ort.get_available_providers())


def requested_providers(device):
    if device not in DEVICES:
        raise ExportError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    has_cuda = CUDA in available_providers()
    if device == "cuda" and not has_cuda:
        raise ExportError("device='cuda' but this onnxruntime has no CUDAExecutionProvider; "
                          "install onnxruntime-gpu (kerasae-runtime[gpu]) or use device='cpu'")
    return [CUDA, CPU] if has_cuda and device != "cpu" else [CPU]


class Session:
    """One ONNX file: `run(x) -> {output name: array}` in fixed-size chunks."""

    def __init__(self, path, input_name, output_names, device="auto", threads=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        wanted = requested_providers(device)
        try:
            self.session = ort.InferenceSession(path, sess_options=options, providers=wanted)
        except Exception as exc:
            raise ExportError(f"onnxruntime cannot load {path}: "
                              f"{str(exc).splitlines()[0]}") from None
        self.provider = self.session.get_providers()[0]
        if wanted[0] == CUDA and self.provider != CUDA:
            message = (f"onnxruntime could not start the CUDA provider for {path} and fell "
                       "back to the CPU (check the CUDA and cuDNN libraries)")
            if device == "cuda":
                raise ExportError(message)
            warnings.warn(message)
        self.input_name = input_name
        self.output_names = list(output_names)

    def _run_chunk(self, x):
        if self.provider == CUDA and len(x) > 1:
            import onnxruntime as ort

            binding = self.session.io_binding()
            binding.bind_ortvalue_input(self.input_name,
                                        ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0))
            for name in self.output_names:
                binding.bind_output(name, "cuda")
            self.session.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()
        return self.session.run(self.output_names, {self.input_name: x})

    def run(self, x, batch_size=1024):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if len(x) == 0:
            raise ExportError("no examples given (the input array is empty)")
        chunks = [self._run_chunk(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
        return {name: np.concatenate([c[k] for c in chunks])
                for k, name in enumerate(self.output_names)}
