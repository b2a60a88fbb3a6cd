"""kerasae's own export formats: `onnx` (with float16 and int8 variants) and `savedmodel`.

Each writes one part and checks it against the Keras part on the same probe inputs
(`kerasae.export.verify`): a file that does not match is never kept.
"""

import os

from kerasae.export.registry import ExportFormat, register_exporter


@register_exporter("onnx")
class OnnxFormat(ExportFormat):
    """ONNX through tf2onnx: PART.onnx, and with fp16/int8 PART.fp16.onnx and PART.int8.onnx
    (float32 inputs and outputs), each run in onnxruntime and checked against Keras."""

    order = 1

    def export_part(self, net, signature, folder, probes, options):
        # TensorFlow and tf2onnx: only when a part is written (`kerasae export --format`
        # is checked against the registry before TensorFlow is imported)
        from kerasae.export import onnx_export, verify

        part = signature.part
        proto = onnx_export.to_onnx(net, signature, options["opset"], options["optimize"])
        variants = [("onnx", f"{part}.onnx", proto, "fp32")]
        if options.get("fp16") and part != "scorer":  # nats need float32 (IsInf has none)
            variants.append(("onnx_fp16", f"{part}.fp16.onnx", onnx_export.to_fp16(proto), "fp16"))
        files, report = {}, {}
        for key, name, p, precision in variants:
            path = onnx_export.save(p, os.path.join(folder, name))
            sess = onnx_export.session(path)
            report[name] = verify.check(
                name,
                signature,
                lambda x, s=sess: onnx_export.run(s, signature, x),
                net,
                probes,
                precision,
            )
            files[key] = name
            if options.get("int8") and precision == "fp32":
                name = f"{part}.int8.onnx"
                calibration, evaluation = options["int8_data"][part]
                report[name] = write_int8(
                    path,
                    os.path.join(folder, name),
                    sess,
                    signature,
                    probes,
                    calibration,
                    evaluation,
                )
                files["onnx_int8"] = name
        return files, report


def write_int8(fp32_path, path, fp32_session, sig, probes, calibration, evaluation):
    """Quantize (calibrated on `calibration`, the part's training inputs), check its error
    on `evaluation` (test inputs) against the float32 file, and time the two (`quantize`).
    The float32 file was checked against Keras already."""
    from kerasae.export import onnx_export, quantize  # TensorFlow: when used

    sess = onnx_export.session(quantize.quantize(fp32_path, path, sig.part, calibration))
    entry = quantize.check_accuracy(sig.part, fp32_session, sess, evaluation)
    speed = quantize.check_speed(sig.part, fp32_session, sess, sig, probes)
    return {"precision": "int8", **entry, "speed": speed}


@register_exporter("savedmodel")
class SavedModelFormat(ExportFormat):
    """A TensorFlow SavedModel per part (PART_savedmodel/), one `serving_default` signature
    with the ONNX file's input and output names."""

    order = 2

    def export_part(self, net, signature, folder, probes, options):
        from kerasae.export import savedmodel, verify  # TensorFlow: when a part is written

        name = f"{signature.part}_savedmodel"
        fn = savedmodel.load(savedmodel.save(net, signature, os.path.join(folder, name)))
        entry = verify.check(
            name, signature, lambda x: savedmodel.run(fn, signature, x), net, probes, "fp32"
        )
        return {"savedmodel": name}, {name: entry}
