"""kerasae-v1-demo: a plugin frozen at kerasae's plugin API version 1 (see README.md)."""
