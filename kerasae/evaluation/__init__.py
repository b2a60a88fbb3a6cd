"""Evaluation (app layer): what a finished run is measured by.

    reconstruction.py  test MSE, PSNR and loss, streamed over batches
    anomaly.py         `kerasae detect`: thresholds, scores, AUROC and average precision
    likelihood.py      the importance-sampled log p(x) of the variational families
    quality.py         sample quality: FID-C, precision and recall (classifier.py: its net)
    coverage.py        class coverage of generated samples
    comparison.py      `kerasae compare`: several families side by side, with PCA
    disentanglement.py MIG, SAP, DCI, modularity/explicitness on (codes, factors) arrays
    disentanglement_scores.py  the BetaVAE and FactorVAE scores (they draw from the data)
    disentanglement_run.py  `kerasae evaluate --disentanglement`: a run's codes, every metric
    factor_labels.py   the factor each code dimension captures; RUN/disentanglement.json

May import runs, the core and the base; never export, report, tracking or the CLI.
"""

from kerasae.lazy import namespace

__getattr__, __dir__ = namespace(
    __name__,
    """
    kerasae.evaluation.reconstruction: evaluate reconstruction_mse
    kerasae.evaluation.anomaly: detect choose_threshold ranking_metrics load_labels
    kerasae.evaluation.likelihood: log_likelihood evaluate_run
    kerasae.evaluation.quality: generation_metrics evaluate_generation frechet_distance
        precision_recall
    kerasae.evaluation.coverage: mode_coverage class_coverage
    kerasae.evaluation.comparison: compare
    kerasae.evaluation.disentanglement: mig sap dci modularity_explicitness all_metrics
    kerasae.evaluation.disentanglement_scores: beta_vae_score factor_vae_score
    kerasae.evaluation.disentanglement_run: evaluate_disentanglement check_factor_dataset
    kerasae.evaluation.factor_labels: dimension_factors
""",
)
