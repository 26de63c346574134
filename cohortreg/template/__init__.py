"""Unbiased templates across cohorts: shape update, weights, labels, and the build's job steps."""
