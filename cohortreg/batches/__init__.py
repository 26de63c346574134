"""Several subjects or pairs per job: the items, their stamps, and which batch holds what."""
