//! Ready-made services. Defaults are the official images, so they work unchanged
//! where a registry is reachable; every module lets the image be swapped.

mod database;
mod mariadb;
mod postgres;
mod redis;

pub use database::TestDatabase;
pub use mariadb::{MariaDb, MariaDbContainer, SharedMariaDb, DEFAULT_IMAGE as MARIADB_IMAGE};
pub use postgres::{Postgres, PostgresContainer, SharedPostgres, DEFAULT_IMAGE as POSTGRES_IMAGE};
pub use redis::{Redis, RedisContainer, RedisDatabase, SharedRedis, DEFAULT_IMAGE as REDIS_IMAGE};
