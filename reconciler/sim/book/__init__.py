"""The simulated broker's book: accounts, orders, matching, fills and their saved state.

Responsible for the book of record inside the simulator, split into ``records`` (values),
``accounts`` (valuation), ``orders`` (intake rules), ``matching`` (prices, sizes,
commissions, holdings), ``persistence`` (state layout) and ``book`` (the ``Book`` that holds
and changes it all). Must not do I/O, sleep or know the wire protocol (see ARCHITECTURE.md
at the repository root).
"""

from reconciler.sim.book.book import Book
from reconciler.sim.book.matching import CommissionSchedule, fill_quantity, marketable_price
from reconciler.sim.book.records import BookError, Fill, SimExecution, SimOrder

__all__ = [
    "Book",
    "BookError",
    "CommissionSchedule",
    "Fill",
    "SimExecution",
    "SimOrder",
    "fill_quantity",
    "marketable_price",
]
