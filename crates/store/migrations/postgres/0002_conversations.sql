-- Conversations and their items, in the order they were added (`seq`).
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    metadata TEXT NOT NULL
);

CREATE TABLE conversation_items (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX conversation_items_by_conversation ON conversation_items (conversation_id, seq);
