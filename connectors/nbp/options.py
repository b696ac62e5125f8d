"""The connector's own keys under ``[connectors.NAME]`` (kind = "nbp").

NBP's Web API needs no account, key or token ("Communication with the service based on parametrized HTTP GET
requests send to the https://api.nbp.pl/api/ address", api.nbp.pl/en.html); HTTPS only since 1 August 2025.
"""

from __future__ import annotations

from datetime import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from connectors.urls import check_base_url
from hub.platform.config import Duration

API_URL = "https://api.nbp.pl/api"
# NBP's documentation: "a single enquiry cannot cover a period longer than 93 days" (the rates endpoint is
# seen to take 367, the tables endpoint 93): every request the connector sends stays within 93 days
MAX_WINDOW_DAYS = 93


class NbpOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_url: str = API_URL  # e.g. the simulator on loopback: http://127.0.0.1:PORT/api
    # "A": average rates of the common currencies (art. 31a ust. 1 of the VAT act), published every working
    # day; "B": the less traded currencies, published on Wednesdays
    table: Literal["A", "B"] = "A"
    request_timeout: Duration = 15.0
    connect_timeout: Duration = 5.0
    attempts: StrictInt = Field(3, ge=1, le=10)  # tries per request on 5xx and timeouts
    # the days before the tax point asked for first: the last working day lies within them (Easter and
    # Christmas leave at most four days without a table)
    lookback_days: StrictInt = Field(14, ge=1, le=MAX_WINDOW_DAYS)
    # when those days hold no table at all, the window is widened once to this many days
    widened_days: StrictInt = Field(31, ge=1, le=MAX_WINDOW_DAYS)
    # Warsaw time by which NBP has published the day's table (it does so between 11:45 and 12:15): until
    # then a rate for tomorrow's tax point may still change, and the connector asks again later
    published_by: time = time(12, 30)

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_base_url(value, what="an http:// or https:// URL", example=API_URL,
                              secret="NBP answers over https only")

    @model_validator(mode="after")
    def _windows(self) -> NbpOptions:
        if self.widened_days < self.lookback_days:
            raise ValueError(f"widened_days ({self.widened_days}) must be at least lookback_days "
                             f"({self.lookback_days})")
        return self
