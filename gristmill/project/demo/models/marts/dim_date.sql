-- description: One row per calendar day across the invoice history.
select
    cast(strftime(d, '%Y%m%d') as integer) as date_key,
    cast(d as date) as date,
    year(d) as year,
    quarter(d) as quarter,
    month(d) as month,
    monthname(d) as month_name,
    dayname(d) as day_name,
    isodow(d) >= 6 as is_weekend
from (
    select unnest(generate_series(min(invoice_date), max(invoice_date), interval 1 day)) as d
    from staging.stg_invoice
) days
