"""Per-subject stages: preprocessing, brain extraction, and each stage from files to files."""
