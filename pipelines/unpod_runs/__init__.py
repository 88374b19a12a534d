"""unpod-runs: Unpod runs into DuckDB, incrementally, and the models built on them."""
