"""Local servers that speak each vendor API's shape, started by the suite (and the benchmarks) on loopback."""
