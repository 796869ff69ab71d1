"""The columnar replica of every dataset (SPEC §6b): Parquet snapshots plus the change log."""
