"""Request handlers of the simulated gateway, one module per request family.

``accounts`` (positions, account updates and summary), ``contracts`` (contract details),
``market_data`` (quotes, market data type, historical bars) and ``orders`` (placing,
cancelling, replays, fills). Each exposes a class whose ``routes()`` maps incoming message
ids to handlers; the dispatcher joins them. Handlers must not frame bytes or own sessions
(see ARCHITECTURE.md at the repository root).
"""
