"""Measuring teaching: tutor eval (simulated readers, metrics, planted defects) and the explainer lint."""
