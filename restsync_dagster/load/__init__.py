"""Floor 5: where data lands. The dlt destination and pipeline, the locks that keep one writer,
questions asked of the warehouse after a load, and ``preview`` (a load into a throwaway file)."""
