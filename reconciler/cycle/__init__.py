"""Stage 5, orchestrate: the cycles (plan, drift report, apply) that run the pipeline end to end.

See ARCHITECTURE.md.
"""

from reconciler.cycle.apply import apply_cycle
from reconciler.cycle.common import ApplyOutcome, CycleError, PlanOutcome, Refused
from reconciler.cycle.plan import drift_report_cycle, plan_cycle

__all__ = [
    "ApplyOutcome",
    "CycleError",
    "PlanOutcome",
    "Refused",
    "apply_cycle",
    "drift_report_cycle",
    "plan_cycle",
]
