-- Requests without the admin scope see only what their subject created: lists
-- of a tenant's responses filter by owner, in id order.
CREATE INDEX responses_by_owner ON responses (tenant, owner, id);

-- API keys created at run time (`antwort keys`, the admin API). Only the
-- SHA-256 of a key is kept; `prefix` tells keys apart in a list.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    tenant TEXT NOT NULL,
    subject TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at);

-- MCP approval requests an approval has answered: a second approval of the
-- same request (through a fork of the chain, or history sent twice) is
-- refused rather than run the call again.
CREATE TABLE mcp_approvals (
    tenant TEXT NOT NULL,
    approval_request_id TEXT NOT NULL,
    response_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, approval_request_id)
);

-- Rate-limit counters shared by the replicas of one database: what each key
-- (or tenant) used in each one-minute window. Old windows are pruned.
CREATE TABLE rate_windows (
    key TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    used BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);

-- Streams open per key (or tenant) on each replica, for the shared limit on
-- concurrent streams. A replica refreshes `seen_at` of its rows every few
-- seconds; rows of a replica that stopped refreshing (it crashed) no longer
-- count once stale.
CREATE TABLE stream_slots (
    key TEXT NOT NULL,
    replica TEXT NOT NULL,
    open BIGINT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (key, replica)
);
