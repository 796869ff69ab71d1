"""Drop-folder imports. ``models`` is pyarrow-free (the uploads endpoint uses it); the rest of
the package runs only in the import function, whose layer carries pyarrow."""
