select
    employee_id,
    first_name || ' ' || last_name as full_name,
    title,
    reports_to
from raw.chinook_db__employee
