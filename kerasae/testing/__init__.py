"""Conformance checks (app layer) for everything a plugin can add, the ones kerasae runs on
its own extensions. A plugin's whole test suite can be one line per extension:

    from kerasae.testing import check_model, check_sampler

    def test_conformance():
        check_model("cae", input_shape=(8, 8, 1))

    models.py       check_model: a family's contract, config, losses, gradients, training,
                    save/load and ONNX export (each check a function of its own)
    extensions.py   check_sampler, check_dataset, check_exporter, check_architecture

A failure raises AssertionError saying which check failed and why. May import everything
below the CLI.
"""

from kerasae.lazy import namespace

__getattr__, __dir__ = namespace(
    __name__,
    """
    kerasae.testing.models: check_model build sample_data check_contract check_config
        check_losses check_gradients check_fit_lowers_loss check_save_load check_export
        export_available reconstruction_error
    kerasae.testing.extensions: check_sampler check_dataset check_exporter check_architecture
""",
)
