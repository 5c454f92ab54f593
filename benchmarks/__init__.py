"""leadflow's benchmarks: scripts that build realistic data and print timings (see docs/performance.md)."""
