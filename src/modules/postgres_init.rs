//! A quicker first start for PostgreSQL images that follow the official
//! image's conventions (`POSTGRES_*` variables, `/docker-entrypoint-initdb.d`).
//!
//! The official entrypoint initialises an empty data directory by running
//! `initdb`, then a temporary server (started and stopped with `pg_ctl -w`,
//! which checks every 100 ms) to create the database and run init scripts,
//! then the real server. With nothing for the temporary server to do (no init
//! scripts, the database `postgres`), [`SCRIPT`] runs `initdb` itself before
//! the entrypoint, which then finds the directory initialised and starts the
//! server at once: about a quarter of a second less here. Whatever the script
//! does not recognise (another user, a password file, a WAL directory, no
//! `initdb` on the `PATH`, no tool to drop root) is left to the entrypoint.

/// Runs `initdb` as the official entrypoint would, then the entrypoint (its
/// arguments), as `sh -c SCRIPT name entrypoint...`.
pub(super) const SCRIPT: &str = r#"set -eu
data="${PGDATA:-/var/lib/postgresql/data}"
user="${POSTGRES_USER:-postgres}"
as_postgres() {
  if command -v gosu >/dev/null 2>&1; then gosu postgres "$@"
  elif command -v su-exec >/dev/null 2>&1; then su-exec postgres "$@"
  else setpriv --reuid=postgres --regid=postgres --init-groups "$@"
  fi
}
quick() {
  [ "$(id -u)" = 0 ] && [ ! -s "$data/PG_VERSION" ] && [ -n "${POSTGRES_PASSWORD:-}" ] || return 1
  [ "${POSTGRES_DB:-$user}" = postgres ] && [ -z "${POSTGRES_INITDB_WALDIR:-}" ] || return 1
  [ -z "${POSTGRES_HOST_AUTH_METHOD:-}" ] && id postgres >/dev/null 2>&1 || return 1
  command -v initdb >/dev/null 2>&1 || return 1
  command -v gosu >/dev/null 2>&1 || command -v su-exec >/dev/null 2>&1 \
    || command -v setpriv >/dev/null 2>&1 || return 1
  for f in /docker-entrypoint-initdb.d/*; do [ ! -e "$f" ] || return 1; done
}
if quick; then
  mkdir -p "$data"
  chown postgres "$data"
  chmod 700 "$data"
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  as_postgres initdb -D "$data" --username="$user" --pwfile="$pwfile" ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pwfile"
  # The entrypoint's default for other hosts: scram-sha-256 from 14 on.
  method=scram-sha-256
  [ "$(cut -d. -f1 "$data/PG_VERSION")" -ge 14 ] || method=md5
  printf '\nhost all all all %s\n' "$method" >> "$data/pg_hba.conf"
fi
exec "$@"
"#;
