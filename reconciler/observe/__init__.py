"""Observe: what the process tells the outside world: log lines (`logs`: format, level and
one handler, configured once by `app/`), Prometheus metrics and notifications (apprise).

`facts` is the value a cycle hands over (its frozen report, its plan, the gateway sessions'
counters); `metrics` turns facts into counters, gauges and a histogram, kept across processes
in the textfile; `notify` turns facts into events, de-duplicates persisting conditions and
sends them. Imported only by `app/`; imports the values of `model/` and `render/`, never the
broker, the store or the simulator. See ARCHITECTURE.md.
"""
