//! The `TokenStore` conformance suite of integrations-core on a SQLite file in a temporary directory.

mod common;

integrations_core::store_conformance_tests!(common::sqlite_file_store);
