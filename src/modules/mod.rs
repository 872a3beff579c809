//! Ready-made services. Defaults are the official images, so they work unchanged
//! where a registry is reachable; every module lets the image be swapped.

mod postgres;
mod redis;

pub use postgres::{
    Postgres, PostgresContainer, SharedPostgres, TestDatabase, DEFAULT_IMAGE as POSTGRES_IMAGE,
};
pub use redis::{Redis, RedisContainer, RedisDatabase, SharedRedis, DEFAULT_IMAGE as REDIS_IMAGE};
