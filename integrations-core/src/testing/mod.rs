//! Conformance suites and test doubles (feature `testing`).
//!
//! - [`store`]: one `pub async fn` per [`TokenStore`](crate::TokenStore) contract
//!   sentence, and the [`store_conformance_tests!`](crate::store_conformance_tests) macro
//!   that expands one named `#[tokio::test]` per case for a store factory.
//! - [`provider_conformance`]: the checks every provider crate runs against its local
//!   server.
//! - [`Owned`]: a store with the guard of what it runs on, every method forwarded.
//! - [`ScriptedProvider`]: a scriptable in-process [`Provider`](crate::Provider) whose
//!   calls are counted.

mod flow;
mod owned;
mod provider;
pub mod store;

pub use flow::{FlowReport, ProviderFlow, Redirect, provider_flow};
pub use owned::Owned;
pub use provider::{ProviderConformance, ScriptedProvider, provider_conformance};

/// Expands one `#[tokio::test(flavor = "multi_thread")]` per store contract case.
///
/// `$factory` is a path to an `async fn() -> Arc<dyn TokenStore>` returning a fresh,
/// empty store for each case.
///
/// ```ignore
/// async fn fresh() -> std::sync::Arc<dyn integrations_core::TokenStore> {
///     std::sync::Arc::new(integrations_core::MemoryStore::new())
/// }
/// integrations_core::store_conformance_tests!(fresh);
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:path) => {
        $crate::store_conformance_tests!(@cases $factory;
            upsert_inserts_then_updates_same_user,
            upsert_refuses_another_users_account,
            get_find_and_list,
            update_account_checks_version,
            update_account_keeps_lease,
            delete_account_removes_row,
            delete_user_data_removes_only_that_user,
            take_pending_returns_once,
            take_pending_is_atomic_under_concurrency,
            pending_expiry_and_purge,
            claim_for_refresh_is_exclusive,
            claim_for_refresh_under_concurrency,
            claim_due_selects_due_active_unleased,
            claim_due_concurrent_callers_are_disjoint,
            audit_append_and_list,
            append_audit_batch_keeps_order,
            update_account_and_release_writes_and_releases,
            events_are_recorded_with_their_change,
            prune_events_keeps_the_recent,
            deliveries_claim_in_order_per_account,
            deliveries_concurrent_claimers_are_disjoint,
            find_account_by_alias_reads_metadata,
            webhook_receipts_are_written_once,
            health_rows_replace_and_prune,
            sealed_values_round_trip,
            count_accounts_by_provider_and_status,
            recent_audit_times_filters_and_orders,
            append_audit_within_limit_is_atomic
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $factory().await;
                $crate::testing::store::$case(store).await;
            }
        )*
    };
}

/// A variable lookup over fixed pairs, for a provider config's `from_lookup` in tests.
pub fn env_lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Asserts that `from_lookup` succeeds with the `required` variables and, with any one
/// of them left out, fails with a [`ProviderError::Config`](crate::ProviderError) naming
/// it.
pub fn assert_each_required_variable_named<T: std::fmt::Debug>(
    required: &[(&str, &str)],
    from_lookup: impl Fn(&dyn Fn(&str) -> Option<String>) -> Result<T, crate::ProviderError>,
) {
    if let Err(e) = from_lookup(&env_lookup(required)) {
        panic!("the required variables alone should be enough: {e}");
    }
    for (missing, _) in required {
        let rest: Vec<_> = required
            .iter()
            .copied()
            .filter(|(k, _)| k != missing)
            .collect();
        match from_lookup(&env_lookup(&rest)) {
            Err(crate::ProviderError::Config(m)) if m.contains(missing) => {}
            other => panic!("without {missing}: expected a Config error naming it, got {other:?}"),
        }
    }
}

/// Every value of header `name` in `headers`, as bytes: for asserting what a request
/// carried byte for byte (`[expected]` also proves the header was sent once).
pub fn header_values<'a>(headers: &'a http::HeaderMap, name: &str) -> Vec<&'a [u8]> {
    headers.get_all(name).iter().map(|v| v.as_bytes()).collect()
}
