-- The sample HR database: the quickstart's 22 workers in SQLite.
-- data/hr.db is built from this file: sqlite3 data/hr.db < data/hr.sql
-- (delete hr.db first). An e2e test checks that the two agree.

CREATE TABLE workers (
    employee_id    TEXT NOT NULL PRIMARY KEY,
    first_name     TEXT NOT NULL,
    last_name      TEXT NOT NULL,
    preferred_name TEXT,
    department     TEXT,
    city           TEXT,
    worker_type    TEXT NOT NULL,
    status         TEXT NOT NULL,
    manager_id     TEXT REFERENCES workers (employee_id),
    updated_at     TEXT NOT NULL          -- raised by every change: the delta watermark
);

-- Multi-valued attributes, one row per value.
CREATE TABLE worker_values (
    employee_id TEXT NOT NULL REFERENCES workers (employee_id),
    attribute   TEXT NOT NULL,
    value       TEXT NOT NULL
);

INSERT INTO workers VALUES
    ('E1000', 'Margaret', 'Hamilton', NULL, 'Executive Office', 'Boston', 'Employee', 'Active', NULL, '2026-12-01 08:00:00'),
    ('E1001', 'José', 'García', NULL, 'Engineering', 'Madrid', 'Employee', 'Active', 'E1000', '2026-12-01 08:00:00'),
    ('E1002', 'Zoë', 'Ørsted', NULL, 'Engineering', 'Copenhagen', 'Employee', 'Active', 'E1001', '2026-12-01 08:00:00'),
    ('E1003', 'Łukasz', 'Kowalski', NULL, 'Engineering', 'Warsaw', 'Employee', 'Active', 'E1002', '2026-12-01 08:00:00'),
    ('E1004', 'Anna', 'Müller', NULL, 'Sales, EMEA', 'Berlin', 'Employee', 'Active', 'E1000', '2026-12-01 08:00:00'),
    ('E1005', 'Robert', 'Smith', 'Bob', 'Sales, EMEA', 'London', 'Employee', 'Active', 'E1004', '2026-12-01 08:00:00'),
    ('E1006', 'Chloé', 'Dubois', NULL, 'Sales, EMEA', 'Paris', 'Employee', 'Active', 'E1004', '2026-12-01 08:00:00'),
    ('E1007', 'Kenji', 'Tanaka', NULL, 'Engineering', 'Tokyo', 'Contractor', 'Active', 'E1002', '2026-12-01 08:00:00'),
    ('E1008', 'Priya', 'Sharma', NULL, 'Finance', 'Boston', 'Employee', 'Active', 'E1000', '2026-12-01 08:00:00'),
    ('E1009', 'Søren', 'Nielsen', NULL, 'Finance', 'Aarhus', 'Employee', 'Active', 'E1008', '2026-12-01 08:00:00'),
    ('E1010', 'Fatima', 'Haddad', NULL, 'Engineering', 'Madrid', 'Employee', 'Active', 'E1002', '2026-12-01 08:00:00'),
    ('E1011', 'Liam', 'O''Brien', NULL, 'Support', 'Dublin', 'Employee', 'Active', 'E1001', '2026-12-01 08:00:00'),
    ('E1012', 'Ana', 'Peña', NULL, 'Support', 'Seville', 'Employee', 'Active', 'E1011', '2026-12-01 08:00:00'),
    ('E1013', 'Mateus', 'Gonçalves', NULL, 'Support', 'Lisbon', 'Contractor', 'Active', 'E1011', '2026-12-01 08:00:00'),
    ('E1014', 'Ingrid', 'Bergström', NULL, 'Finance', 'Stockholm', 'Employee', 'Active', 'E1008', '2026-12-01 08:00:00'),
    ('E1015', 'Hélène', 'Lefèvre', 'Léna', 'Sales, EMEA', 'Lyon', 'Employee', 'Active', 'E1004', '2026-12-01 08:00:00'),
    ('E1016', 'Dmitri', 'Volkov', NULL, 'Engineering', 'Tallinn', 'Employee', 'Terminated', 'E1002', '2026-12-01 08:00:00'),
    ('E1017', 'Grace', 'Hopper', NULL, 'Engineering', 'Boston', 'Employee', 'Active', 'E1001', '2026-12-01 08:00:00'),
    ('E1018', 'Noah', 'Schäfer', NULL, 'Support', 'Munich', 'Employee', 'Active', 'E1011', '2026-12-01 08:00:00'),
    ('E1019', 'Aisha', 'Bello', NULL, 'Finance', 'Lagos', 'Contractor', 'Active', 'E1008', '2026-12-01 08:00:00'),
    ('E1020', 'Tomás', 'Horák', NULL, 'Engineering', 'Prague', 'Intern', 'Active', 'E1003', '2026-12-01 08:00:00'),
    ('E1021', 'Yuki', 'Sato', NULL, 'Sales, EMEA', 'Osaka', 'Employee', 'Active', 'E1004', '2026-12-01 08:00:00');

INSERT INTO worker_values VALUES
    ('E1000', 'roles', 'approver'),
    ('E1000', 'roles', 'executive'),
    ('E1001', 'roles', 'approver'),
    ('E1004', 'roles', 'approver'),
    ('E1008', 'roles', 'approver'),
    ('E1008', 'roles', 'payroll'),
    ('E1011', 'roles', 'approver'),
    ('E1011', 'roles', 'on-call'),
    ('E1014', 'roles', 'payroll'),
    ('E1017', 'roles', 'on-call');
