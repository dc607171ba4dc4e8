-- Tickets still open past their severity's time limit are escalated, once.
ALTER TABLE trouble_tickets ADD COLUMN escalated_at timestamptz;
