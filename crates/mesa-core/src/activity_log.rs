//! The audit log as front ends read it (SPEC §1 ActivityEvent).

use mesa_domain::entity::ActivityEvent;
use mesa_store::{ActivityFilter, ChainReport, Page, PageRequest};

use crate::error::Result;
use crate::mesa::Mesa;

impl Mesa {
    /// Audit rows, newest first.
    pub async fn activity_log(
        &self,
        filter: &ActivityFilter,
        page: &PageRequest,
    ) -> Result<Page<ActivityEvent>> {
        Ok(self.inner.store.list_activity(filter, page).await?)
    }

    /// Walks the whole hash chain (`mesa audit verify`).
    pub async fn verify_activity(&self) -> Result<ChainReport> {
        Ok(self.inner.store.verify_activity_chain().await?)
    }
}
