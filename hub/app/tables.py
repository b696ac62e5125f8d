"""Every table of the hub on one MetaData: what Alembic compares the migrations with."""

from __future__ import annotations

from hub.catalog import models as catalog_models
from hub.invoicing import models as invoicing_models
from hub.jobs import models as jobs_models
from hub.listings import models as listings_models
from hub.orders import models as orders_models
from hub.platform.schema import Base
from hub.shipping import models as shipping_models

metadata = Base.metadata
MODEL_MODULES = (jobs_models, catalog_models, listings_models, orders_models, shipping_models, invoicing_models)
