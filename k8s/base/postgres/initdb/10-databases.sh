#!/bin/bash
# One role and one database per component, and a read-only role for the dashboard on the warehouse.
#
# The postgres image runs this once, on the first start of an empty data directory
# (/docker-entrypoint-initdb.d), as the superuser over the local socket. It is idempotent, so it can be
# re-run by hand after a password changed in the Secrets (roles and databases are created when
# missing; passwords are set from the environment every time):
#   kubectl -n mlops exec statefulset/postgresql -- bash /docker-entrypoint-initdb.d/10-databases.sh
set -euo pipefail

: "${WAREHOUSE_DB_PASSWORD:?missing (Secret mlops-postgres)}"
: "${DAGSTER_DB_PASSWORD:?missing (Secret dagster-postgresql-secret)}"
: "${MLFLOW_DB_PASSWORD:?missing (Secret mlops-postgres)}"
: "${DASHBOARD_DB_PASSWORD:?missing (Secret mlops-postgres)}"

# Passwords travel as psql variables (:'name' quotes them as literals): never interpolated by the shell.
psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  --set=warehouse_pw="$WAREHOUSE_DB_PASSWORD" \
  --set=dagster_pw="$DAGSTER_DB_PASSWORD" \
  --set=mlflow_pw="$MLFLOW_DB_PASSWORD" \
  --set=dashboard_pw="$DASHBOARD_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', name)
  FROM unnest(ARRAY['warehouse', 'dagster', 'mlflow', 'dashboard_ro']) AS name
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name)
\gexec
ALTER ROLE warehouse PASSWORD :'warehouse_pw';
ALTER ROLE dagster PASSWORD :'dagster_pw';
ALTER ROLE mlflow PASSWORD :'mlflow_pw';
ALTER ROLE dashboard_ro PASSWORD :'dashboard_pw';
-- The dashboard reads; it never writes, whatever a query asks.
ALTER ROLE dashboard_ro SET default_transaction_read_only = on;

-- warehouse: the pipeline's tables and serving's inference log (both as the role warehouse)
-- dagster:   runs, events, schedules (dagster-postgres)
-- mlflow:    the tracking server's backend store
SELECT format('CREATE DATABASE %I OWNER %I', name, name)
  FROM unnest(ARRAY['warehouse', 'dagster', 'mlflow']) AS name
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = name)
\gexec
REVOKE CONNECT ON DATABASE warehouse, dagster, mlflow FROM PUBLIC;
GRANT CONNECT ON DATABASE warehouse TO dashboard_ro;

\connect warehouse
GRANT USAGE ON SCHEMA public TO dashboard_ro;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO dashboard_ro;
-- Tables the pipeline and serving create later (as warehouse) are readable by the dashboard too.
ALTER DEFAULT PRIVILEGES FOR ROLE warehouse IN SCHEMA public GRANT SELECT ON TABLES TO dashboard_ro;
SQL
echo "databases warehouse, dagster, mlflow and their roles are in place"
