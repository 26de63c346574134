"""The sample sheet: its contract, BIDS datasets as sheets, the shared datasets and the demo cohort."""
