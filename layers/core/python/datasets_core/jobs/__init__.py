"""Background jobs on one engine (``engine``): purges, index backfills, compaction."""
