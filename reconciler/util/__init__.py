"""Dependency-free helpers every stage may use, the simulator included: atomic file writes,
polling with a deadline, and process liveness.

Must not import anything else of the package (it sits below `model/`). See ARCHITECTURE.md.
"""
