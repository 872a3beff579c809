//! Ready-made services. Defaults are the official images, so they work unchanged
//! where a registry is reachable; every module lets the image be swapped.

mod postgres;

pub use postgres::{
    Postgres, PostgresContainer, SharedPostgres, TestDatabase, DEFAULT_IMAGE as POSTGRES_IMAGE,
};
