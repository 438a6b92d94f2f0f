//! The store conformance suite against `MemoryStore`.

use integrations_core::{MemoryStore, TokenStore};
use std::sync::Arc;

async fn fresh() -> Arc<dyn TokenStore> {
    Arc::new(MemoryStore::new())
}

integrations_core::store_conformance_tests!(fresh);
