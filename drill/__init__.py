"""The fault drill: does Hookway keep its promise when things break?

The promise: every webhook that got a 2xx from ingest is delivered (at least once) to
every destination it was routed to, and a receiver gets a delivery twice only when a
crash (or its own slowness: a timeout) explains it.

``python -m drill`` (``make drill``) proves or disproves it in a few minutes: a steady
sender posts webhooks to a real Hookway (one uvicorn web process with the embedded
dispatcher, plus one ``manage.py dispatch``) on a fresh database while the drill kills
processes, breaks the database and serves badly behaved receivers; then it lets the
queue drain and checks what the sender was told against the database and what the
receivers got. docs/operations.md ("Fault drill") says how to read the report.

Modules, in the order a run uses them:

- ``config``: the drill's knobs and the Hookway environment and hookway.toml it runs with.
- ``database``: the dedicated database (PostgreSQL or SQLite): create and migrate it, the
  database faults (terminate connections, hold the write lock), read the results.
- ``receivers``: the three destinations (steady, trickle, flap), recording every request.
- ``processes``: Hookway's processes (start, wait until ready, kill -9, SIGTERM).
- ``load``: the sender, which behaves like a real webhook sender (10 s timeout, retries).
- ``faults``: the fault timeline run during the load.
- ``causes``: why a receiver got a delivery twice (one small function to adjust).
- ``report``: the checks, the verdict and var/drill/report.md.
"""
