"""``hub demo``: the daemon, the simulators and a demo ERP feed on an embedded database.

Outside hub/: it joins the CLI through the ``hub.commands`` entry point and registers its own
connector kind in its own process only, so no production config can select it."""
