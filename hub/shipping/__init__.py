"""Shipping: a shipment per order booked with the right carrier exactly once, its label stored for the
packer, its tracking number on the channel within seconds, the day's courier pickup, and the parcel
followed to the buyer."""
