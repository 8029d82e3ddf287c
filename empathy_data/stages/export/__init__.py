"""export: accepted exchanges to sharded Parquet with a dataset card, manifest and rejects."""
