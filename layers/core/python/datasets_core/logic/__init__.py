"""Endpoint logic: what each endpoint does, between the handler and the store."""
