"""Hypothesis fuzzing of the inputs that come from outside (a package, so its helpers import
as `fuzz.*` and never collide with same-named helpers of other test folders)."""
