-- description: Tracks with album, artist, genre and media type resolved.
select
    t.track_id,
    t.name as track_name,
    al.title as album_title,
    ar.name as artist_name,
    g.name as genre_name,
    mt.name as media_type,
    t.composer,
    t.milliseconds,
    cast(t.unit_price as decimal(10, 2)) as unit_price
from raw.chinook_db__track t
left join raw.chinook_db__album al on al.album_id = t.album_id
left join raw.chinook_db__artist ar on ar.artist_id = al.artist_id
left join raw.chinook_db__genre g on g.genre_id = t.genre_id
left join raw.chinook_db__media_type mt on mt.media_type_id = t.media_type_id
