"""`reconcile serve`: the read-only status API (api.py, models.py), the data it shows
(data.py) and the web dashboard (dashboard.py, templates/, static/ with the vendored uPlot).
Must not write to the store or trade."""
