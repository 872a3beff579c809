//! Ready-made services. Defaults are the official images, so they work unchanged
//! where a registry is reachable; every module lets the image be swapped.

#[cfg(feature = "postgres")]
mod admin_hint;
mod database;
mod mariadb;
#[cfg(feature = "mariadb")]
mod mariadb_admin;
#[cfg(feature = "mariadb")]
mod mariadb_clone;
#[cfg(feature = "mariadb")]
mod mariadb_template;
#[cfg(any(feature = "postgres", feature = "mariadb"))]
mod migrations;
mod nats;
#[cfg(feature = "postgres")]
mod pool;
mod postgres;
mod postgres_init;
mod redis;
mod scram;
mod service;
#[cfg(feature = "postgres")]
mod template;
mod url;
#[cfg(feature = "postgres")]
mod warm;

pub use database::TestDatabase;
pub use mariadb::{MariaDb, MariaDbContainer, SharedMariaDb, DEFAULT_IMAGE as MARIADB_IMAGE};
#[cfg(feature = "mariadb")]
pub use mariadb_template::MigratedMariaDb;
#[cfg(any(feature = "postgres", feature = "mariadb"))]
pub use migrations::Migrations;
pub use nats::{Nats, NatsContainer, SharedNats, DEFAULT_IMAGE as NATS_IMAGE};
pub use postgres::{Postgres, PostgresContainer, SharedPostgres, DEFAULT_IMAGE as POSTGRES_IMAGE};
pub use redis::{
    FreeDatabases, Redis, RedisContainer, RedisDatabase, SharedRedis, DEFAULT_IMAGE as REDIS_IMAGE,
};
pub use service::{Running, Service, Shared};
#[cfg(feature = "postgres")]
pub use template::MigratedDatabase;
