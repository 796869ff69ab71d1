"""Shared core of the Datasets API: HTTP plumbing, auth, query grammar, storage, imports."""
