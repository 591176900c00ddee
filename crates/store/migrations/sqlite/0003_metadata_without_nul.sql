-- On PostgreSQL this version replaces escaped NULs in stored metadata, which
-- its JSON functions reject. SQLite's accept them: nothing to do.
SELECT 1;
