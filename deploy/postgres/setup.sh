#!/usr/bin/env bash
# Makes the hub's PostgreSQL role and database (Debian 12, PostgreSQL 15). Run it as the server's
# superuser; running it again changes nothing but the password (it is set again from the file).
#   sudo -u postgres deploy/postgres/setup.sh /etc/community-hub/database-password
#   sudo -u postgres deploy/postgres/setup.sh          # asks for the password instead
# The role (LOGIN, no other right) owns the database, so the hub applies its own migrations at
# start. The password never appears on a command line: it is read from the file's first line (or
# typed), handed to psql in its environment and sent on psql's connection, the statement kept out
# of the server's log. psql's usual variables (PGHOST, PGPORT, PGUSER) say which server.
#   options: --role NAME (default community_hub), --database NAME (default community_hub)
set -euo pipefail
role=community_hub
database=community_hub
file=""
while [ $# -gt 0 ]; do
  case "$1" in
    --role) role=${2:?--role NAME}; shift 2 ;;
    --database) database=${2:?--database NAME}; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 64 ;;
    *) file=$1; shift ;;
  esac
done
for name in "$role" "$database"; do
  [[ "$name" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "$name: a role or database name here is lower-case letters, digits and _" >&2; exit 64; }
done
if [ -n "$file" ]; then
  [ -r "$file" ] || { echo "cannot read the password file $file" >&2; exit 66; }
  IFS= read -r password < "$file" || true
else
  IFS= read -r -s -p "Password for the PostgreSQL role $role: " password; echo >&2
  IFS= read -r -s -p "The same again: " again; echo >&2
  [ "$password" = "$again" ] || { echo "the two passwords differ" >&2; exit 65; }
fi
[ ${#password} -ge 16 ] || { echo "the password must have at least 16 characters (openssl rand -base64 32 makes one)" >&2; exit 65; }

HUB_SETUP_PASSWORD=$password psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 --set role="$role" --set database="$database" --dbname postgres <<'SQL'
\getenv password HUB_SETUP_PASSWORD
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SET password_encryption = 'scram-sha-256';
SELECT format('CREATE ROLE %I', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT PASSWORD :'password';
\unset password
-- C.UTF-8 orders text by code point, as SQLite does: the same lists in the same order on both engines.
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L LC_COLLATE %L LC_CTYPE %L TEMPLATE template0', :'database', :'role', 'UTF8', 'C.UTF-8', 'C.UTF-8')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
ALTER DATABASE :"database" OWNER TO :"role";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
\connect :database
-- PostgreSQL 15's public schema belongs to the database's owner; nobody else may use it.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
\pset tuples_only on
\pset format unaligned
SELECT format('database %s (%s, %s) owned by %s, who may log in: %s; others may not connect',
              datname, pg_encoding_to_char(encoding), datcollate, pg_get_userbyid(datdba), (SELECT rolcanlogin FROM pg_roles WHERE oid = datdba))
  FROM pg_database WHERE datname = current_database();
SQL
