"""Floor 6: everything that imports Dagster. Assets, the run body, checks, jobs, schedules,
partitions, the env resources, the retry sensor, and the builder of the code location."""
