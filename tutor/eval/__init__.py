"""Measuring teaching: explainer lint now; simulated readers and metrics (issue 12) later."""
