#!/bin/sh
# Run once by the postgres image when it initialises an empty data volume
# (mounted into /docker-entrypoint-initdb.d/ by docker-compose.yml), as its superuser.
# Creates Warroom's two roles and gives the database to the owner; README
# ("Database roles") has the same SQL for an existing database or any other PostgreSQL.
set -eu
: "${WARROOM_OWNER_PASSWORD:?set WARROOM_OWNER_PASSWORD}"
: "${WARROOM_APP_PASSWORD:?set WARROOM_APP_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v owner_password="$WARROOM_OWNER_PASSWORD" -v app_password="$WARROOM_APP_PASSWORD" <<'SQL'
CREATE ROLE warroom_owner LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD :'owner_password';
CREATE ROLE warroom_app LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD :'app_password';
ALTER DATABASE warroom OWNER TO warroom_owner;
ALTER SCHEMA public OWNER TO warroom_owner;
REVOKE ALL ON DATABASE warroom FROM PUBLIC;
GRANT CONNECT ON DATABASE warroom TO warroom_owner, warroom_app;
SQL
