-- Why Kapso never took a failed send (unreachable, busy), which earlier
-- versions recorded as a made-up Meta error with code 0 and the title
-- "not taken by Kapso" in errors_json. NULL for every other message; a send
-- Kapso or WhatsApp refused keeps Meta's errors in errors_json.
ALTER TABLE messages ADD COLUMN not_taken TEXT;

UPDATE messages
SET not_taken = errors_json::jsonb -> 0 ->> 'message', errors_json = NULL
WHERE errors_json LIKE '%not taken by Kapso%'
  AND errors_json::jsonb -> 0 ->> 'code' = '0'
  AND errors_json::jsonb -> 0 ->> 'title' = 'not taken by Kapso';
