-- description: Track dimension with album, artist, genre and media type.
-- checks:
--   - unique: track_key
--   - not_null: [track_key, genre_name]
select
    track_id as track_key,
    track_name,
    album_title,
    artist_name,
    genre_name,
    media_type,
    composer,
    milliseconds,
    unit_price
from staging.stg_track
