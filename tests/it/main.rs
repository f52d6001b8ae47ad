//! The integration tests, one binary (each module was once its own binary, and each
//! linked the whole crate): every module starts the real `shopflow` binary with a real
//! restate-server and a real database. `cargo test --test it MODULE::` runs one module.

mod common;

mod api;
mod backup;
mod chaos;
mod cluster;
mod durability;
mod external;
mod hostile;
mod layers;
mod lifecycle;
mod money;
mod orders;
mod parcels;
mod returns;
mod security;
mod tracing;
mod ui;
mod versions;
mod webhooks;
