-- description: One row per invoice line (what was sold, to whom, when, for how much).
-- tags: [finance]
select
    l.invoice_line_id,
    l.invoice_id,
    c.customer_key,
    l.track_id as track_key,
    cast(strftime(i.invoice_date, '%Y%m%d') as integer) as date_key,
    i.invoice_date,
    i.billing_country,
    l.quantity,
    l.unit_price,
    l.unit_price * l.quantity as revenue
from staging.stg_invoice_line l
join staging.stg_invoice i on i.invoice_id = l.invoice_id
join marts.dim_customer c on c.customer_key = i.customer_id
