-- TMF688 event hub: callbacks subscribed to the BSS APIs' events (productOrderingManagement,
-- customerBillManagement, usageManagement), with the query that selects the events each one receives.
CREATE TABLE hub_subscriptions (
    id         text PRIMARY KEY,
    api        text NOT NULL,
    callback   text NOT NULL,
    query      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hub_subscriptions_by_api ON hub_subscriptions (api);
