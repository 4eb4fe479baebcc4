"""Negative agents built on stable-baselines3."""
