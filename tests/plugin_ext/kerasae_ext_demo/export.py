"""`keras_file`: each part as a native Keras `.keras` file, checked by loading it back."""

import os

import keras

from kerasae.export import ExportFormat, register_exporter
from kerasae.export.verify import check


@register_exporter("keras_file")
class KerasFile(ExportFormat):
    """PART.keras: the part's network in Keras's own format, reloaded and verified."""

    def export_part(self, net, signature, folder, probes, options):
        name = f"{signature.part}.keras"
        net.save(os.path.join(folder, name))
        loaded = keras.saving.load_model(os.path.join(folder, name), compile=False)

        def run(x):
            out = loaded(x, training=False)
            out = out if isinstance(out, (list, tuple)) else [out]
            return {n: keras.ops.convert_to_numpy(o) for n, o in zip(signature.output_names, out)}

        return {"keras_file": name}, {name: check(name, signature, run, net, probes, "fp32")}
