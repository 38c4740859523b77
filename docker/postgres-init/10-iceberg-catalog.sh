#!/bin/bash
# The Iceberg catalog's own database on the stack's PostgreSQL: pyiceberg's SQL catalog keeps its tables there
# (iceberg_tables, iceberg_namespace_properties: the layout of Java's JdbcCatalog, so Trino's and Spark's Iceberg
# JDBC catalogs can open the same tables). The postgres image runs this once, on an empty data directory.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v catalog_user="$ICEBERG_CATALOG_USER" -v catalog_db="$ICEBERG_CATALOG_DB" \
  -v catalog_password="$ICEBERG_CATALOG_PASSWORD" <<'SQL'
CREATE ROLE :"catalog_user" LOGIN PASSWORD :'catalog_password';
CREATE DATABASE :"catalog_db" OWNER :"catalog_user";
SQL
