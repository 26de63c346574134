"""CohortReg: cohort-scale brain MRI registration.

The package holds the science; Snakemake rules and scripts only wire it together.
"""

__version__ = "0.1.0"
