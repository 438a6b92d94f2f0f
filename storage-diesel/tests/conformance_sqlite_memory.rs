//! The `TokenStore` conformance suite of integrations-core on SQLite in memory (`sqlite::memory:`).

mod common;

integrations_core::store_conformance_tests!(common::sqlite_memory_store);
