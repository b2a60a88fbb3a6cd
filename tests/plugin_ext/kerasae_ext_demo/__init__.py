"""kerasae-ext-demo: one plugin of each extension kind but models (see README.md)."""
