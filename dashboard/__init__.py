"""The edge people and other systems meet: the TM Forum-shaped HTTP API, event hub subscriptions
and the live operations dashboard. Each domain's API reads only that domain's data."""
