//! SQLite and PostgreSQL implementations of [`mdm_core::ports::Store`].
//!
//! One code path with runtime queries (PostgreSQL on `sqlx::AnyPool`, SQLite
//! on the crate's own `rusqlite` pool, ADR 0013); the backend is
//! chosen once from the database URL ([`SqlStore::connect`]) and SQL differs
//! only where it must (`BEGIN IMMEDIATE` on SQLite, `FOR UPDATE SKIP LOCKED`
//! on PostgreSQL, catalog queries). Migrations for both backends are embedded
//! and applied by [`SqlStore::migrate`]. [`copy_all`] moves every table from
//! one database to another (`convert-db`). Why this shape:
//! `docs/adr/0002-storage-sqlx-any.md`.
//!
//! Stored types: times are BIGINT unix milliseconds, ids TEXT, flags BIGINT
//! 0/1, JSON TEXT. Every query on tenant data is scoped by `tenant_id`.

mod access;
mod admin;
mod android;
mod android_rows;
mod apple;
mod audit;
mod convert;
mod db;
mod devices;
mod directory;
mod funnel;
mod invites;
mod jobs;
mod lite;
mod migrate;
mod paging;
mod pki;
mod registrations;
mod reminders;
mod rows;
mod signin;
mod sql;
mod store;
mod tables;
mod tenants;
mod users;
mod walvfs;

pub use convert::{CopyReport, copy_all};
pub use store::{Backend, SqlStore};
pub use tables::{ColumnType, ColumnValue, TABLES, Table};
