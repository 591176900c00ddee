-- Metadata stored before a NUL character was refused at the edge: PostgreSQL's
-- JSON functions reject the `\u0000` escape, so one such value broke every
-- metadata filter of its tenant. Each escaped NUL (not preceded by an escaping
-- backslash) becomes U+FFFD, the replacement character; the value stays valid
-- JSON and keeps its place.
UPDATE responses
SET metadata = regexp_replace(metadata, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ufffd', 'g')
WHERE metadata LIKE '%\\u0000%';
UPDATE conversations
SET metadata = regexp_replace(metadata, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ufffd', 'g')
WHERE metadata LIKE '%\\u0000%';
