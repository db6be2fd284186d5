"""The simulated IB Gateway: ``server`` (SimGateway: life cycle, market loop, test API),
``session`` (one client connection), ``dispatch`` (handshake, startApi, pacing, routing),
``handlers`` (one module per request family) and ``thread`` (run_in_thread).

Must not import an IB client library (see ARCHITECTURE.md at the repository root). Import
the submodules; this package imports nothing so that ``reconciler.sim`` stays cheap.
"""
