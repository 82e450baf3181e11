-- description: One row per customer, names cleaned, with their support representative.
-- owner: sales-ops
select
    customer_id,
    trim(first_name) || ' ' || trim(last_name) as full_name,
    nullif(trim(company), '') as company,
    city,
    nullif(state, '') as state,
    country,
    lower(email) as email,
    support_rep_id
from raw.chinook_db__customer
