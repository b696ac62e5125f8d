"""The composition root: where the capabilities meet the platform and the job queue (handler
wiring, ``hub status``). Only the CLI and the demo import it."""
