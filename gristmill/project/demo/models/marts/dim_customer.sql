-- description: Customer dimension, one row per customer.
-- columns:
--   customer_key: Surrogate key (the store's customer id).
--   support_rep: The employee who looks after the customer.
select
    c.customer_id as customer_key,
    c.full_name,
    c.company,
    c.city,
    c.state,
    c.country,
    c.email,
    e.full_name as support_rep
from staging.stg_customer c
left join staging.stg_employee e on e.employee_id = c.support_rep_id
