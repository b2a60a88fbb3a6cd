"""Where the modules of kerasae 0.2 went in 0.3 (architecture v2), and the aliases that keep
their old import paths working for one release, each with a DeprecationWarning.

`import kerasae` installs a finder for the old paths: `from kerasae.anomaly import detect`
still gives `kerasae.evaluation.anomaly.detect`, and says where it lives now. A package that
replaced a module of the same name (`kerasae.runs`, `kerasae.samplers`, `kerasae.data`,
`kerasae.callbacks`) resolves the old module's other names the same way (`kerasae.lazy`).
The tables below are the record of the move; docs/architecture.md lists them too.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

REMOVED_IN = "0.4"

#: modules moved whole in 0.3: old path -> new path
MODULES = {
    "kerasae.checkpoints": "kerasae.runs.checkpoints",
    "kerasae.compare": "kerasae.evaluation.comparison",
    "kerasae.coverage": "kerasae.evaluation.coverage",
    "kerasae.data_memory": "kerasae.data.memory",
    "kerasae.data_records": "kerasae.data.records",
    "kerasae.detect_data": "kerasae.data.scoring",
    "kerasae.divergences": "kerasae.probability.divergences",
    "kerasae.exporters.manifest": "kerasae.export.manifest",
    "kerasae.exporters.onnx_export": "kerasae.export.onnx_export",
    "kerasae.exporters.phase_conv": "kerasae.export.phase_conv",
    "kerasae.exporters.quantize": "kerasae.export.quantize",
    "kerasae.exporters.savedmodel": "kerasae.export.savedmodel",
    "kerasae.exporters.signatures": "kerasae.export.signatures",
    "kerasae.exporters.tfserving": "kerasae.export.tfserving",
    "kerasae.exporters.triton": "kerasae.export.triton",
    "kerasae.exporters.verify": "kerasae.export.verify",
    "kerasae.introspect": "kerasae.models.introspect",
    "kerasae.likelihood": "kerasae.evaluation.likelihood",
    "kerasae.pipeline": "kerasae.data.pipeline",
    "kerasae.quantizer": "kerasae.nets.quantizer",
    "kerasae.sampling": "kerasae.samplers.langevin_sampling",
    "kerasae.saving": "kerasae.models.saving",
    "kerasae.tfrecord": "kerasae.data.tfrecord",
    "kerasae.two_stage": "kerasae.samplers.two_stage",
}

#: modules split in 0.3: old path -> {new module: its public names from the old one}
SPLIT = {
    "kerasae.latent_draws": {
        "kerasae_runtime.manifest": "draw_gaussian draw_mixture",
    },
    "kerasae.anomaly": {
        "kerasae.runs.threshold": (
            "DEFAULT_PERCENTILE THRESHOLD fit_threshold load_threshold "
            "save_threshold score_description threshold_at_percentile "
            "training_scores"
        ),
        "kerasae.evaluation.anomaly": (
            "choose_threshold detect load_labels plot_histogram plot_roc "
            "ranking_metrics write_scores"
        ),
    },
    "kerasae.callbacks": {
        "kerasae.callbacks.annealing": "BetaAnnealing SCHEDULES SIGMOID_STEEPNESS beta_at",
        "kerasae.callbacks.grids": (
            "GRID_EXAMPLES LatentTraversal ReconstructionGrid SampleGrid "
            "default_grid_callbacks traversal_codes traversal_images"
        ),
    },
    "kerasae.data": {
        "kerasae.data.memory": "Dataset SPLIT_SEED",
        "kerasae.data.named": "FASHION_DIRS NAMED",
        "kerasae.data.images": "IMAGE_SUFFIXES",
        "kerasae.data.schemes": "MMAP_BYTES",
        "kerasae.data.sources": "load_dataset",
        "kerasae.data.arrays": "apply_scaling numeric read_examples",
    },
    "kerasae.data_arrays": {
        "kerasae.data.mapped": "MappedArray",
        "kerasae.data.arrays": "apply_scaling numeric read_examples",
    },
    "kerasae.data_files": {
        "kerasae.data.images": (
            "GREY_MODES IMAGE_SUFFIXES PNG_MODES SCALING TF_FORMATS decode_image "
            "fit_image key_fraction list_images"
        ),
        "kerasae.data.folders": "ImageFolder StreamingDataset",
        "kerasae.data.streams": "TFRECORD_MARK is_image_source open_images tfrecord_files",
    },
    "kerasae.distributions": {
        "kerasae.probability.layers": (
            "BernoulliLikelihood GaussianLikelihood GaussianPosterior KL_METHODS "
            "LIKELIHOODS stateless_seed"
        ),
        "kerasae.probability.gaussian": (
            "LOG_VAR_RANGE gaussian_scale_tril mixture_log_prob pairwise_log_prob "
            "posterior_log_prob standard_normal_log_prob"
        ),
        "kerasae.probability.likelihoods": "flat_float",
    },
    "kerasae.exporters": {
        "kerasae.export.write": "FORMATS THRESHOLD export_model",
        "kerasae.export.run": "export_layout export_run",
        "kerasae.export.layouts": "layout_name layout_parts read_export write_layout_folder",
    },
    "kerasae.losses": {
        "kerasae.probability.kernels": "MMD_KERNELS MMD_SCALES mmd_kernel mmd_unbiased",
        "kerasae.probability.likelihoods": "per_example_bce per_example_error reconstruction_loss",
        "kerasae.probability.adversarial": (
            "critic_loss discriminator_bce generator_bce gradient_penalty"
        ),
        "kerasae.probability.gaussian": "gaussian_kl",
        "kerasae.probability.regularizers": "jacobian_penalty sparsity_kl",
    },
    "kerasae.pixelcnn": {
        "kerasae.samplers.pixelcnn": (
            "CHUNK ONNX_FILE PixelCNNSampler WEIGHTS_FILE draw_indices invert_cdf"
        ),
        "kerasae.samplers.pixelcnn_net": (
            "build_network causal_mask first_kernel_size masked_conv2d"
        ),
    },
    "kerasae.quality": {
        "kerasae.evaluation.classifier": (
            "CLASSIFIER_SEED CLASSIFIER_VERSION Classifier FEATURES cache_dir "
            "classifier_for dataset_key train_classifier"
        ),
        "kerasae.evaluation.quality": (
            "K_NEIGHBOURS describe evaluate_generation frechet_distance "
            "generation_metrics knn_radii precision_recall"
        ),
    },
    "kerasae.registry": {
        "kerasae.models.registry": (
            "API_VERSION GROUP SUPPORTED_API_VERSIONS create_model get_entry "
            "get_model_class list_models register_model"
        ),
    },
    "kerasae.rundata": {
        "kerasae.data.options": "DATA_OPTIONS check_data_options data_options parse_image_size",
        "kerasae.runs.data": (
            "EVAL_BATCH batch_arrays check_shape fit_pipelines is_multiworker "
            "open_data read_batches stream_scores"
        ),
        "kerasae.evaluation.reconstruction": "evaluate reconstruction_mse",
    },
    "kerasae.runs": {
        "kerasae.runs.folder": (
            "CHECKPOINTS CONFIG HISTORY MODEL UNCOMPARED default_out is_finished "
            "load_run prepare_out read_history resume_config settings_diff"
        ),
        "kerasae.runs.config": "LR_SCHEDULES TrainConfig",
        "kerasae.runs.training": "RunInterrupted adam beta_callbacks run_facts train",
        "kerasae.evaluation.reconstruction": "evaluate",
    },
    "kerasae.sampler_runs": {
        "kerasae.runs.samplers": (
            "FIT_LIMIT check_for_model fit_after_training fit_run_sampler "
            "load_sampler resolve_sampler run_generator run_samplers_dir "
            "save_run_sampler training_examples"
        ),
        "kerasae.samplers.base": "no_sampler_message",
    },
    "kerasae.samplers": {
        "kerasae.samplers.base": (
            "ARRAYS LatentSampler META SAMPLERS SAMPLERS_DIR create_sampler "
            "no_sampler_message register_sampler sampler_names"
        ),
        "kerasae.runs.samplers": (
            "FIT_LIMIT check_for_model fit_after_training fit_run_sampler "
            "load_sampler resolve_sampler run_generator run_samplers_dir "
            "save_run_sampler training_examples"
        ),
        "kerasae.samplers.arrays": "GMMSampler GaussianSampler PriorSampler",
    },
    "kerasae.tracking": {
        "kerasae.callbacks.mlflow": (
            "DEFAULT_EXPERIMENT DEFAULT_URI FAIL_FAST MAX_KEY_LENGTH "
            "MAX_PARAM_LENGTH MLflowLogger RUN_FILES RUN_FOLDERS default_uri "
            "flatten_params import_mlflow run_artifacts"
        ),
    },
}

#: names of 0.2 that are gone, and what replaces each (an AttributeError says so)
REMOVED = {
    "kerasae.distributions.tfd": "tensorflow_probability.distributions",
    "kerasae.distributions.posterior": "kerasae.probability.gaussian (the densities) and "
    "kerasae.probability.layers.reparameterized_draw",
    "kerasae.latent_draws.draw_spec": "kerasae.samplers.arrays.draw_codes",
    "kerasae.pixelcnn.export_onnx": "a sampler's export_graph, written by kerasae.export",
    "kerasae.exporters.LAYOUTS": "kerasae.export.registry.names('layout')",
    "kerasae.samplers.LEARNED_MODULES": "the kerasae.samplers entry points",
}


def new_home(old_module, name):
    """The module that now defines `name` of the 0.2 module `old_module` (None: not moved)."""
    if old_module in MODULES:
        return MODULES[old_module]
    for new, names in SPLIT.get(old_module, {}).items():
        if name in names.split():
            return new
    return None


class MovedWarning(DeprecationWarning):
    """A kerasae 0.2 module path was used (kerasae's own tests turn it into an error)."""


def warn(old, new):
    warnings.warn(
        f"{old} moved to {new} in kerasae 0.3; import it from there (the old path "
        f"goes in kerasae {REMOVED_IN})",
        MovedWarning,
        stacklevel=3,
    )


def resolve(old_module, name):
    """`name` of the 0.2 module `old_module` from its new home, with a DeprecationWarning;
    AttributeError where it did not move."""
    new = new_home(old_module, name)
    if f"{old_module}.{name}" in REMOVED:
        raise AttributeError(
            f"{old_module}.{name} was removed in kerasae 0.3; use "
            f"{REMOVED[f'{old_module}.{name}']}"
        )
    if new is None:
        raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
    warn(f"{old_module}.{name}", f"{new}.{name}")
    return getattr(importlib.import_module(new), name)


class _Alias(types.ModuleType):
    """A 0.2 module path: each name resolves from its new home, with a DeprecationWarning."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return resolve(self.__name__, name)


class _AliasLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return _Alias(spec.name)

    def exec_module(self, module):
        module.__path__ = []  # `kerasae.exporters` held submodules: let them resolve too


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in MODULES or name in SPLIT:
            return importlib.util.spec_from_loader(name, _AliasLoader())
        return None


_FINDER = _Finder()


def install():
    """Make the 0.2 module paths importable (`import kerasae` does it)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)  # last: a real module of that name always wins
