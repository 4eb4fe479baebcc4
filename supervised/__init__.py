"""Negative-learning supervised models, datasets, occlusions and training utilities."""
