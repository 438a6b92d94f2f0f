//! Key rotation: re-sealing stored tokens under the cipher's current key.

use crate::DieselStore;
use integrations_core::{
    AccountRecord, SealedSecret, SecretContext, StoreError, TokenCipher, TokenStore,
};

/// What [`DieselStore::reseal_all`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResealReport {
    /// Accounts looked at.
    pub scanned: u64,
    /// Accounts written back with re-sealed tokens.
    pub resealed: u64,
    /// Ids of accounts whose tokens could not be opened with any loaded key (unknown key
    /// id, tampered, or moved). They are left as they are.
    pub failed: Vec<i64>,
    /// Ids of accounts that kept changing under the pass (version conflicts on every
    /// attempt). Run the pass again.
    pub conflicted: Vec<i64>,
    /// Pending authorizations whose PKCE verifier was re-sealed.
    pub pending_resealed: u64,
    /// Pending authorizations whose verifier no loaded key opens; left as they are (their
    /// callback will fail, as it would have anyway).
    pub pending_failed: u64,
}

const PAGE: i64 = 200;
const ATTEMPTS: usize = 3;

/// The record with its tokens re-sealed, `Ok(None)` when nothing needs it.
fn reseal_record(
    cipher: &TokenCipher,
    record: &AccountRecord,
) -> Result<Option<AccountRecord>, integrations_core::CryptoError> {
    let (provider, account) = (
        record.provider.as_str(),
        record.provider_account_id.as_str(),
    );
    let reseal = |sealed: &Option<SealedSecret>, context| -> Result<Option<SealedSecret>, _> {
        match sealed {
            Some(s) if cipher.needs_reseal(s) => cipher.reseal(context, s).map(Some),
            _ => Ok(None),
        }
    };
    let access = reseal(
        &record.access_token,
        SecretContext::access_token(provider, account),
    )?;
    let refresh = reseal(
        &record.refresh_token,
        SecretContext::refresh_token(provider, account),
    )?;
    if access.is_none() && refresh.is_none() {
        return Ok(None);
    }
    let mut updated = record.clone();
    if access.is_some() {
        updated.access_token = access;
    }
    if refresh.is_some() {
        updated.refresh_token = refresh;
    }
    Ok(Some(updated))
}

impl DieselStore {
    /// Re-seals every account's `access_token` and `refresh_token` that was sealed under
    /// an older key, so the older key can be retired.
    ///
    /// Walks `oauth_accounts` by id in pages. Each value whose key id is not the cipher's
    /// current one ([`TokenCipher::needs_reseal`]) is opened with whichever loaded key
    /// sealed it and sealed again under the current key, for the same context
    /// ([`SecretContext::access_token`], [`SecretContext::refresh_token`]). The row is written back through the optimistic `version` check (so a
    /// concurrent refresh is never overwritten; the pass re-reads and retries). Values that
    /// fail to open are reported in [`ResealReport::failed`] and left untouched.
    ///
    /// The PKCE verifiers of pending authorizations are re-sealed too (context
    /// [`SecretContext::pkce_verifier`]), each with one conditional `UPDATE` that leaves a row taken or changed meanwhile
    /// alone. A connection started by an instance still sealing under the old key after
    /// the pass needs that key to finish: keep it loaded (`TOKEN_ENCRYPTION_KEY_PREVIOUS`)
    /// for the pending lifetime (10 minutes by default) after every instance has the new
    /// one.
    pub async fn reseal_all(&self, cipher: &TokenCipher) -> Result<ResealReport, StoreError> {
        let mut report = ResealReport::default();
        let mut after = 0;
        loop {
            let page = self.accounts_after(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for record in page {
                report.scanned += 1;
                self.reseal_one(cipher, record, &mut report).await?;
            }
        }
        self.reseal_pending(cipher, &mut report).await?;
        tracing::info!(
            scanned = report.scanned,
            resealed = report.resealed,
            failed = report.failed.len(),
            conflicted = report.conflicted.len(),
            pending_resealed = report.pending_resealed,
            pending_failed = report.pending_failed,
            "re-sealed account tokens under the current key"
        );
        Ok(report)
    }

    async fn reseal_one(
        &self,
        cipher: &TokenCipher,
        mut record: AccountRecord,
        report: &mut ResealReport,
    ) -> Result<(), StoreError> {
        for _ in 0..ATTEMPTS {
            let updated = match reseal_record(cipher, &record) {
                Ok(Some(updated)) => updated,
                Ok(None) => return Ok(()),
                Err(_) => {
                    report.failed.push(record.id);
                    return Ok(());
                }
            };
            match self.update_account(&updated, &[]).await {
                Ok(_) => {
                    report.resealed += 1;
                    return Ok(());
                }
                Err(StoreError::VersionConflict) => match self.get_account(record.id).await? {
                    Some(fresh) => record = fresh,
                    None => return Ok(()),
                },
                Err(StoreError::NotFound) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        report.conflicted.push(record.id);
        Ok(())
    }

    /// Re-seals the PKCE verifiers of pending authorizations (few: they live minutes).
    async fn reseal_pending(
        &self,
        cipher: &TokenCipher,
        report: &mut ResealReport,
    ) -> Result<(), StoreError> {
        for (state_hash, provider, sealed) in self.pending_verifiers().await? {
            let sealed = SealedSecret::from_stored(sealed);
            if !cipher.needs_reseal(&sealed) {
                continue;
            }
            let context = SecretContext::pkce_verifier(&provider, &state_hash);
            match cipher.reseal(context, &sealed) {
                Ok(resealed) => {
                    if self
                        .replace_pending_verifier(&state_hash, sealed.as_str(), resealed.as_str())
                        .await?
                    {
                        report.pending_resealed += 1;
                    }
                }
                Err(_) => report.pending_failed += 1,
            }
        }
        Ok(())
    }
}
