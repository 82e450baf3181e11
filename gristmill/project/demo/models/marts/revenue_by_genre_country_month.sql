-- description: Revenue by genre and billing country, per month.
-- tags: [finance]
select
    cast(date_trunc('month', f.invoice_date) as date) as month,
    t.genre_name as genre,
    f.billing_country as country,
    count(*) as invoice_lines,
    sum(f.quantity) as tracks_sold,
    sum(f.revenue) as revenue
from marts.fct_invoice_line f
join marts.dim_track t on t.track_key = f.track_key
group by all
order by month, genre, country
