"""kerasae's version: one place, read by the package, the run folder, exports and samplers."""

__version__ = "0.3.0"
