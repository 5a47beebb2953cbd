-- The album is read newest first by (received_at, id): an index in that order
-- makes any page a range read instead of a sort of the whole space.
CREATE INDEX media_album_time ON media(space_id, state, received_at, id);
