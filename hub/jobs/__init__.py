"""The job queue: every effect on another system is a job with an idempotency key. Queue, worker
pool, scheduler, backoff, handler registry and the ``hub run`` daemon. It imports no capability:
capabilities register their handlers (hub.app.wiring)."""
