"""TensorFlow SavedModel export with one `serving_default` signature per part.

`keras.export.ExportArchive` tracks the part's variables and writes the same named
`tf.function` the ONNX exporter traces, so TF Serving and `tf.saved_model.load` see the
input `x` (or `z`) and outputs named like the ONNX file's.
"""

import keras
import tensorflow as tf

from kerasae.errors import KerasaeError
from kerasae.export.signatures import ScoreNet, serving_function, tensor_spec


def save(net, signature, path):
    archive = keras.export.ExportArchive()
    archive.track(net.model if isinstance(net, ScoreNet) else net)  # the variables it reads
    archive.add_endpoint(
        "serve", serving_function(net, signature), input_signature=[tensor_spec(signature)]
    )
    try:
        archive.write_out(path, verbose=False)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise KerasaeError(
            f"the {signature.part} could not be saved as a SavedModel: {first}"
        ) from None
    return path


def load(path):
    return tf.saved_model.load(path).signatures["serving_default"]


def run(fn, signature, x):
    out = fn(**{signature.input_name: tf.constant(x)})
    return {n: out[n].numpy() for n in signature.output_names}
