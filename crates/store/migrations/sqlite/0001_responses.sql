-- Responses and their items. JSON is kept as text so that both databases share
-- every query; `body` is the response object exactly as the API returns it.
CREATE TABLE responses (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    previous_response_id TEXT,
    metadata TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX responses_by_tenant ON responses (tenant, id);

-- kind 0: input items, kind 1: output items, each in its order.
CREATE TABLE response_items (
    response_id TEXT NOT NULL,
    kind BIGINT NOT NULL,
    position BIGINT NOT NULL,
    item_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (response_id, kind, position)
);
CREATE INDEX response_items_by_id ON response_items (item_id);
