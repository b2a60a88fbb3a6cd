"""Keras callbacks (core layer): beta annealing, image grids, traversals, MLflow logging.

    annealing.py    BetaAnnealing: KL warm-up schedules
    grids.py        reconstruction, sample and latent-traversal grids (PNG, TensorBoard)
    mlflow.py       MLflowLogger (the mlflow extra, imported when it connects)

Used by kerasae.runs and by users' own `fit`; a model never imports them. May import the
base and `kerasae.plots`.
"""

from kerasae.lazy import namespace

__getattr__, __dir__ = namespace(
    __name__,
    """
    kerasae.callbacks.annealing: BetaAnnealing beta_at SCHEDULES
    kerasae.callbacks.grids: SampleGrid ReconstructionGrid LatentTraversal traversal_codes
        traversal_images default_grid_callbacks GRID_EXAMPLES
    kerasae.callbacks.mlflow: MLflowLogger
""",
)
