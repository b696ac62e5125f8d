"""What the dead-code check (tests/test_architecture.py) must not call unused: each is reached in a way
a static reader cannot see. Every entry says how; anything else hub/ defines that no code in hub/,
connectors/ or demo/ calls is code only tests call, and the check fails on it."""

from hub.invoicing.models import InvoiceCounter
from hub.jobs.metrics import QueueDepthCollector
from hub.jobs.queue import release_held
from hub.kernel.ports.carrier import Carrier
from hub.kernel.ports.channel import TrackingChannel
from hub.platform.schema import RateBucket, UTCDateTime

QueueDepthCollector.collect  # prometheus_client calls it at each scrape
release_held  # registered with @credentials.on_login: a fresh login calls it
Carrier.book  # the carrier port: the carrier connectors implement it, hub/shipping calls it
Carrier.label
Carrier.cancel
Carrier.services
Carrier.pickup_windows
Carrier.book_pickup
Carrier.cancel_pickup
Carrier.track
UTCDateTime.process_bind_param  # SQLAlchemy's TypeDecorator interface
UTCDateTime.process_result_value
RateBucket  # the rate limiter's table: hub.platform.ratelimit reads and writes it in SQL
TrackingChannel.add_tracking  # the channel's tracking push: hub/shipping calls it
InvoiceCounter  # the numbering counters' table: hub.invoicing.numbering takes numbers from it in SQL
