"""ib-reconciler: declarative, GitOps-style reconciler for Interactive Brokers portfolios.

The package is a pipeline of stages (see ARCHITECTURE.md): desired -> actual -> diff ->
planner -> risk -> plan -> execute -> report, with `store` for the ledger, `broker` as the
only importer of the IB client library and `sim` as the offline gateway. This top-level
module must stay import-light: commands that never talk to the gateway import it.
"""

__version__ = "0.1.0"
