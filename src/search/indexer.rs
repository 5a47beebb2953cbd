//! Keeping the index in step with the database: the background indexer of
//! the server, the catch-up at start, and the full rebuild of `appliance reindex`.

use std::{sync::Arc, time::Duration};

use tantivy::IndexWriter;
use tokio::sync::watch;

use super::{Search, SearchError};
use crate::{
    db::{self, spaces::SpaceId},
    App,
};

/// Documents rewritten per commit, at most.
const BATCH: i64 = 2_000;

/// The `kv` key of the database generation the index must match.
const GENERATION_KEY: &str = "search.generation";

/// The database's generation id, created on first use. A restored or replaced
/// database with another id makes the index rebuild.
pub fn generation(app: &App) -> Result<String, db::DbError> {
    let c = app.db.conn()?;
    if let Some(g) = db::kv_get(&c, GENERATION_KEY)? {
        return Ok(g);
    }
    let g = crate::web::auth::random_token()[..16].to_string();
    db::kv_set(&c, GENERATION_KEY, &g)?;
    Ok(g)
}

/// Rewrites one batch of queued documents and commits. Returns how many keys it handled.
pub fn index_batch(
    app: &App,
    search: &Search,
    writer: &mut IndexWriter,
    generation: &str,
) -> Result<usize, anyhow::Error> {
    let (batch, docs) = {
        let c = app.db.conn()?;
        let batch = db::search::dirty_batch(&c, BATCH)?;
        let mut docs = Vec::with_capacity(batch.len());
        for (key, _) in &batch {
            docs.push((key.clone(), db::search::load_doc(&c, key)?));
        }
        (batch, docs)
    };
    if batch.is_empty() {
        return Ok(0);
    }
    search.apply(writer, &docs)?;
    search.commit(writer, generation)?;
    let c = app.db.conn()?;
    db::search::clear_done(&c, &batch)?;
    Ok(batch.len())
}

/// At start: when the index was made from another database, is new, or
/// holds a different number of documents than the database says it should
/// (with nothing queued), clears it and queues every document.
pub fn catch_up(
    app: &App,
    search: &Search,
    writer: &mut IndexWriter,
    generation: &str,
) -> Result<bool, anyhow::Error> {
    let c = app.db.conn()?;
    let same_generation = search.payload().map(|p| p.generation) == Some(generation.to_string());
    let queued = db::search::queue_len(&c)?;
    let expected = db::search::indexable_count(&c)?;
    let behind = queued == 0 && search.num_docs() != expected as u64;
    if same_generation && !search.fresh && !behind {
        return Ok(false);
    }
    tracing::info!(
        same_generation,
        behind,
        expected,
        "rebuilding the search index from the database"
    );
    search.clear(writer)?;
    search.commit(writer, generation)?;
    let tx = c.unchecked_transaction()?;
    db::search::mark_all_dirty(&tx, None)?;
    tx.commit()?;
    Ok(true)
}

/// The server's indexer: waits for queued keys, rewrites them in batches.
pub async fn run(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let search = app.search.clone();
    let mut writer = match search.writer() {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "search indexing is off: cannot open the index writer");
            return;
        }
    };
    let generation = match generation(&app) {
        Ok(g) => g,
        Err(e) => {
            tracing::error!(error = %e, "search indexing is off");
            return;
        }
    };
    if let Err(e) =
        tokio::task::block_in_place(|| catch_up(&app, &search, &mut writer, &generation))
    {
        tracing::error!(error = %e, "search catch-up failed; will index what is queued");
    }
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() {
            break;
        }
        match tokio::task::block_in_place(|| index_batch(&app, &search, &mut writer, &generation)) {
            Ok(n) if n > 0 => {
                failures = 0;
                tracing::debug!(documents = n, "search index updated");
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "search indexing failed; retrying");
                let _ = writer.rollback();
                tokio::time::sleep(Duration::from_secs(1 << failures.min(6))).await;
            }
        }
        tokio::select! {
            _ = app.index_dirty.notified() => {
                // Let a burst of changes accumulate into one commit.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => {}
        }
    }
    let _ = writer.wait_merging_threads();
}

/// Rebuilds the index from the database (one space, or all), calling
/// `progress(done, total)` as it goes.
///
/// # Errors
/// [`SearchError::Locked`] (as an `anyhow` error) when a server holds the index.
pub fn rebuild(
    app: &App,
    space: Option<SpaceId>,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64, anyhow::Error> {
    let search = &app.search;
    let mut writer = search.writer()?;
    let generation = generation(app)?;
    let c = app.db.conn()?;
    let total: u64 = {
        let mut n = 0u64;
        let mut after = String::new();
        loop {
            let page = db::search::keys_page(&c, space, &after, 10_000)?;
            let Some(last) = page.last() else { break };
            after = last.clone();
            n += page.len() as u64;
        }
        n
    };
    match space {
        Some(s) => search.clear_space(&writer, s.0),
        None => search.clear(&writer)?,
    }
    let mut done = 0u64;
    let mut after = String::new();
    loop {
        let page = db::search::keys_page(&c, space, &after, 1_000)?;
        let Some(last) = page.last() else { break };
        after = last.clone();
        let mut docs = Vec::with_capacity(page.len());
        for key in page {
            let doc = db::search::load_doc(&c, &key)?;
            docs.push((key, doc));
        }
        search.apply(&writer, &docs)?;
        done += docs.len() as u64;
        progress(done, total);
    }
    search.commit(&mut writer, &generation)?;
    if space.is_none() {
        // Everything queued before the rebuild is now reflected.
        let queued = db::search::dirty_batch(&c, i64::MAX)?;
        db::search::clear_done(&c, &queued)?;
    }
    writer.wait_merging_threads()?;
    Ok(done)
}

impl From<SearchError> for crate::error::AppError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::BadQuery(m) => crate::error::AppError::BadRequest(m),
            other => crate::error::AppError::Internal(other.to_string()),
        }
    }
}
