#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas up to date.
# Runs in temporalio/admin-tools (password from SQL_PASSWORD); safe to run again.
set -eu
sql() {
  db="$1"
  shift
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
    -u "$POSTGRES_USER" --db "$db" "$@"
}
schema=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  sql "$db" create 2>/dev/null || echo "database $db exists"
  sql "$db" setup-schema -v 0.0 2>/dev/null || echo "schema of $db exists"
done
sql temporal update-schema -d "$schema/temporal/versioned"
sql temporal_visibility update-schema -d "$schema/visibility/versioned"
echo "Temporal schema is up to date."
