select
    invoice_id,
    customer_id,
    cast(invoice_date as date) as invoice_date,
    billing_city,
    billing_country,
    cast(total as decimal(10, 2)) as total
from raw.chinook_export__invoice
