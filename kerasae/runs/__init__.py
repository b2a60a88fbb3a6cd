"""Runs (app layer): one folder per training run, and everything that reads or writes it.

    config.py       TrainConfig, the one source of `kerasae train`'s flags
    folder.py       the run folder's paths, history, load_run, resume and settings checks
    training.py     train: the staged training of a run
    checkpoints.py  atomic per-epoch checkpoints, resume, the NaN guard
    threshold.py    threshold.json, the anomaly threshold written when training ends
    data.py         the run's data, reopened as it was read, and its training pipelines
    samplers.py     RUN/samplers/NAME: latent samplers fitted to a run's codes

May import the core (models, samplers, data, nets, probability, callbacks) and the base;
never evaluation, export, report, tracking or the CLI, which build on it.
"""

from kerasae.lazy import namespace

__getattr__, __dir__ = namespace(
    __name__,
    """
    kerasae.runs.config: TrainConfig LR_SCHEDULES
    kerasae.runs.folder: CONFIG MODEL HISTORY CHECKPOINTS default_out is_finished settings_diff
        read_history prepare_out resume_config load_run
    kerasae.runs.training: train RunInterrupted run_facts adam beta_callbacks
""",
)
