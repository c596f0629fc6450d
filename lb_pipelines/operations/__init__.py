"""Operating the pipeline: recovering from crashed runs, and saying what was delivered and what is wrong."""
