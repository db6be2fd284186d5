"""Observability for the application layer: log configuration (and, from other parts,
metrics and notifications). Imported by `reconciler.app` only; see ARCHITECTURE.md."""
