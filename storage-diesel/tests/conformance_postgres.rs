//! The `TokenStore` conformance suite of integrations-core on PostgreSQL (own schema per case; see tests/common for the server URL and the skip variable).

mod common;

integrations_core::store_conformance_tests!(common::postgres_store);
