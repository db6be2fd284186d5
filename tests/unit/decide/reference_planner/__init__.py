"""The planner as it was before issue 12's optimisation (planner, risk, sizing, drift and the
desired-state snapshot, import-adjusted), kept as the reference the optimised planner must
match: `test_planner_matches_reference.py` compares both on random books."""
