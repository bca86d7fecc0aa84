"""The chaos test (issue 8, "The proof").

A load of webhook events and agent replies goes through real Daphne, Celery and Redis
processes on PostgreSQL (or SQLite), while processes are killed and restarted and the
Messenger emulator injects Graph and webhook faults. Afterwards, counts from the
database and the emulator show that nothing was lost, doubled or left stuck.

    python -m tests.chaos [--events 10000] [--database postgresql|sqlite] ...  (make chaos)

`world` starts everything; `supervisor` kills processes on purpose and restarts any
that exit; `monkey` is the fault schedule; `load` plays the customers and the agents;
`ledger` counts what the emulator delivered; `audit` settles, counts and checks the
invariants; `run` puts it together; `test_chaos` is the shortened run in `make test`.
"""
