"""The listings: each channel offer bound to a SKU, its desired quantity and price (stock rules,
pricing with the minimum-margin floor, competitor prices), the set-based diff against what the
channel acknowledged, pushes, and reconciliation with what the channel really shows.

No other capability imports the listings: they subscribe to the catalogue's changed-SKU signal."""
