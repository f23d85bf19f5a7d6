"""Design results: the per-task table, Pareto fronts and GDS thumbnails."""
