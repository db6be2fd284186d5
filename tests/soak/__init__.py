"""The randomised soak (a package, so its helpers import as `soak.*` and never collide with
same-named helpers of other test folders)."""
