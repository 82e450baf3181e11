select
    invoice_line_id,
    invoice_id,
    track_id,
    cast(unit_price as decimal(10, 2)) as unit_price,
    quantity
from raw.chinook_export__invoice_line
