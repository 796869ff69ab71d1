"""``make bench``: the performance figures of SPEC §10, measured on a dataset built for the run.

``python -m bench`` starts the local stack (``python -m local``) on free ports, loads rows
through the public HTTP API, reads ``meta.items_read`` of index-backed and scan queries at
two dataset sizes, measures the write path, the import conversion, the handler cold start
and the deployed package size, prints each figure beside its target and exits 1 when a
target is missed.
"""
