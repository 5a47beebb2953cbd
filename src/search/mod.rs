//! Full-text search: the tantivy index in `DATA_DIR/index`, kept in step with
//! the database, and the search itself.
//!
//! - **Documents**: one per message with text and one per stored media item
//!   (caption, file name, sender, chat title, kind, MIME type, date, camera).
//!   Keys are `m:<id>` and `f:<id>` (see [`crate::db::search`]).
//! - **Analysis**: every text is lowercased and ASCII-folded (`Noël` = `noel`);
//!   the `en` and `fr` fields also stem, per the space's language (`both` by
//!   default). Queries match folded words, their stems, words one typo away
//!   (5+ letters), and the word being typed as a prefix.
//! - **Isolation**: [`Search::search`] takes the caller's [`SpaceScope`]s and
//!   adds a filter on the `space` fast field itself, in this one place.
//! - **Consistency**: the database is the source of truth. Every change
//!   queues its document key in `index_queue` in the same transaction; the
//!   [`indexer`] rewrites queued documents in batches, commits, and only then
//!   removes the keys, so a crash re-indexes rather than loses. At start, an
//!   index from another database generation, or out of count with the
//!   database, is rebuilt. The writer's memory budget is 20 MB.

pub mod indexer;
pub mod query;

use std::{collections::HashMap, path::Path};

use chrono::Datelike;
use serde::Serialize;
use tantivy::{
    collector::{
        sort_key::{SortBySimilarityScore, SortByStaticFastValue},
        TopDocs,
    },
    query::{
        AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, PhraseQuery,
        Query, RangeQuery, TermQuery,
    },
    schema::{
        Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value,
        STORED, STRING,
    },
    tokenizer::{
        AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
        TextAnalyzer,
    },
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term,
};

use crate::db::{search::IndexDoc, spaces::SpaceScope};

use query::Clause;

/// Bump when the schema or the analysis changes: the index is then rebuilt at start.
pub const SCHEMA_VERSION: u32 = 4;

/// Memory budget of the index writer, bytes (tantivy's minimum is 15 MB).
pub const WRITER_BUDGET: usize = 20_000_000;

/// Errors of the search layer.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query cannot be understood; the message says what to fix.
    #[error("{0}")]
    BadQuery(String),
    /// Another process (the server) holds the index writer.
    #[error("the index is in use by a running server")]
    Locked,
    /// Any tantivy error.
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// Filesystem error.
    #[error("search index: {0}")]
    Io(#[from] std::io::Error),
}

/// The fields of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    key: Field,
    space: Field,
    kind: Field,
    date: Field,
    ord: Field,
    has_caption: Field,
    all: Field,
    en: Field,
    fr: Field,
    sender: Field,
    chat: Field,
    text: Field,
}

fn text_field(tokenizer: &str, positions: bool) -> TextOptions {
    let record = if positions {
        IndexRecordOption::WithFreqsAndPositions
    } else {
        IndexRecordOption::WithFreqs
    };
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(record),
    )
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let num = NumericOptions::default()
        .set_indexed()
        .set_fast()
        .set_stored();
    let fields = Fields {
        key: b.add_text_field("key", STRING | STORED),
        space: b.add_u64_field("space", num.clone()),
        kind: b.add_text_field("kind", STRING | STORED),
        date: b.add_i64_field("date", num),
        ord: b.add_u64_field("ord", NumericOptions::default().set_fast()),
        has_caption: b.add_u64_field("has_caption", NumericOptions::default().set_indexed()),
        all: b.add_text_field("all", text_field("fold", true)),
        // Stems are matched word by word; phrases use `all`.
        en: b.add_text_field("en", text_field("en", false)),
        fr: b.add_text_field("fr", text_field("fr", false)),
        sender: b.add_text_field("sender", text_field("fold", true)),
        chat: b.add_text_field("chat", text_field("fold", true)),
        text: b.add_text_field("text", STORED),
    };
    (b.build(), fields)
}

fn analyzer(stem: Option<Language>) -> TextAnalyzer {
    let b = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter);
    match stem {
        Some(l) => b.filter(Stemmer::new(l)).build(),
        None => b.build(),
    }
}

fn register_tokenizers(index: &Index) {
    index.tokenizers().register("fold", analyzer(None));
    index
        .tokenizers()
        .register("en", analyzer(Some(Language::English)));
    index
        .tokenizers()
        .register("fr", analyzer(Some(Language::French)));
}

/// What the index's last commit says about itself.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Payload {
    /// The database generation the index was built from.
    pub generation: String,
    /// [`SCHEMA_VERSION`] of the index.
    pub schema: u32,
}

/// The search index: reader always, writer on demand.
pub struct Search {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// True when the index was created empty by this open (new, or rebuilt
    /// because its schema was outdated).
    pub fresh: bool,
}

/// One search result.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// Message or media item id (see `kind`).
    pub id: i64,
    /// `message`, or the media kind (`photo`, `video`...).
    pub kind: String,
    /// Space slug.
    pub space: String,
    /// Relevance (BM25; 0 for filter-only queries, sorted by date).
    pub score: f32,
    /// Excerpt with matches in `<b>`, HTML-escaped.
    pub snippet: String,
    /// When the message was sent (RFC 3339, UTC).
    pub received_at: String,
}

/// A page of results.
#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    /// The hits, best first.
    pub hits: Vec<Hit>,
    /// Cursor of the next page, if there may be one.
    pub next_cursor: Option<String>,
}

impl Search {
    /// Opens the index in `dir`, creating it (or recreating it, when its schema
    /// is outdated) as needed.
    pub fn open(dir: &Path) -> Result<Self, SearchError> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let mut fresh = false;
        let index = match Index::open_in_dir(dir) {
            Ok(index) => {
                let payload = read_payload(&index);
                if index.schema() == schema
                    && payload.as_ref().map(|p| p.schema) == Some(SCHEMA_VERSION)
                {
                    index
                } else {
                    tracing::info!("search index schema changed: rebuilding it");
                    std::fs::remove_dir_all(dir)?;
                    std::fs::create_dir_all(dir)?;
                    fresh = true;
                    Index::create_in_dir(dir, schema)?
                }
            }
            Err(_) => {
                fresh = true;
                Index::create_in_dir(dir, schema)?
            }
        };
        register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Search {
            index,
            reader,
            fields,
            fresh,
        })
    }

    /// Takes the index writer (one thread, [`WRITER_BUDGET`]).
    ///
    /// # Errors
    /// [`SearchError::Locked`] when another process holds it.
    pub fn writer(&self) -> Result<IndexWriter, SearchError> {
        match self.index.writer_with_num_threads(1, WRITER_BUDGET) {
            Ok(w) => Ok(w),
            Err(tantivy::TantivyError::LockFailure(..)) => Err(SearchError::Locked),
            Err(e) => Err(e.into()),
        }
    }

    /// The payload of the last commit.
    pub fn payload(&self) -> Option<Payload> {
        read_payload(&self.index)
    }

    /// Documents in the index (after the last reload).
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Rewrites documents: each key is deleted, then added again when it has a document.
    pub fn apply(
        &self,
        writer: &IndexWriter,
        docs: &[(String, Option<IndexDoc>)],
    ) -> Result<(), SearchError> {
        for (key, doc) in docs {
            writer.delete_term(Term::from_field_text(self.fields.key, key));
            if let Some(d) = doc {
                writer.add_document(self.document(d))?;
            }
        }
        Ok(())
    }

    /// Deletes every document (before a rebuild).
    pub fn clear(&self, writer: &IndexWriter) -> Result<(), SearchError> {
        writer.delete_all_documents()?;
        Ok(())
    }

    /// Deletes the documents of one space (before rebuilding it).
    pub fn clear_space(&self, writer: &IndexWriter, space: i64) {
        writer.delete_term(Term::from_field_u64(self.fields.space, space as u64));
    }

    /// Commits with the payload and makes the result visible to searches.
    pub fn commit(&self, writer: &mut IndexWriter, generation: &str) -> Result<(), SearchError> {
        let payload = serde_json::to_string(&Payload {
            generation: generation.to_string(),
            schema: SCHEMA_VERSION,
        })
        .expect("payload serialises");
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Makes commits by other processes visible.
    pub fn reload(&self) -> Result<(), SearchError> {
        Ok(self.reader.reload()?)
    }

    fn document(&self, d: &IndexDoc) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.key, &d.key);
        doc.add_u64(f.space, d.space.0 as u64);
        doc.add_text(f.kind, &d.kind);
        doc.add_i64(f.date, d.date);
        doc.add_u64(f.ord, ord_of(&d.key));
        doc.add_u64(f.has_caption, u64::from(d.has_caption));
        let words = [Some(d.text.as_str()), d.file_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n");
        let mut all = words.clone();
        for extra in [
            Some(d.sender.as_str()),
            Some(d.chat.as_str()),
            d.camera.as_deref(),
            d.mime.as_deref(),
            Some(d.kind.as_str()),
        ]
        .into_iter()
        .flatten()
        {
            all.push('\n');
            all.push_str(extra);
        }
        all.push('\n');
        all.push_str(&date_words(d.date));
        doc.add_text(f.all, &all);
        if d.language != "fr" {
            doc.add_text(f.en, &words);
        }
        if d.language != "en" {
            doc.add_text(f.fr, &words);
        }
        doc.add_text(f.sender, &d.sender);
        doc.add_text(f.chat, &d.chat);
        let shown = if d.text.is_empty() {
            d.file_name.clone().unwrap_or_default()
        } else {
            d.text.clone()
        };
        doc.add_text(f.text, &shown);
        doc
    }

    /// Runs `q` over the spaces of `scopes` (and only those). `cursor` is the
    /// `next_cursor` of a previous page.
    ///
    /// # Errors
    /// [`SearchError::BadQuery`] for a query that cannot be parsed or a bad cursor.
    pub fn search(
        &self,
        scopes: &[SpaceScope],
        q: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<SearchPage, SearchError> {
        let offset: usize = match cursor {
            Some(c) => c
                .parse()
                .map_err(|_| SearchError::BadQuery(format!("bad cursor {c:?}")))?,
            None => 0,
        };
        let limit = limit.clamp(1, 200);
        let clauses = query::parse(q).map_err(SearchError::BadQuery)?;
        let searcher = self.reader.searcher();
        let want = offset + limit + 1;
        // Words as typed first; when they find nothing, again with one typo
        // allowed (so typos cost nothing when they are not needed).
        let (mut query, ranked) = self.build(&clauses, scopes, false)?;
        let mut found = self.top(&searcher, &*query, ranked, want)?;
        if ranked && found.is_empty() {
            query = self.build(&clauses, scopes, true)?.0;
            found = self.top(&searcher, &*query, ranked, want)?;
        }
        let more = found.len() > offset + limit;
        found.truncate(offset + limit);
        let slugs: HashMap<u64, &str> = scopes
            .iter()
            .map(|s| (s.id().0 as u64, s.space().slug.as_str()))
            .collect();
        let mut highlighter = self.highlighter(&clauses)?;
        let mut hits = Vec::with_capacity(limit);
        for (score, date, addr) in found.into_iter().skip(offset) {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let get_str = |f: Field| {
                doc.get_first(f)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let key = get_str(self.fields.key);
            let space = doc
                .get_first(self.fields.space)
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            let text = get_str(self.fields.text);
            let kind = get_str(self.fields.kind);
            let snippet = highlighter.snippet(&text, 160)?;
            hits.push(Hit {
                id: key
                    .split_once(':')
                    .and_then(|(_, id)| id.parse().ok())
                    .unwrap_or(0),
                kind,
                space: slugs.get(&space).copied().unwrap_or("").to_string(),
                score,
                snippet,
                received_at: chrono::DateTime::from_timestamp(date, 0)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
        }
        Ok(SearchPage {
            hits,
            next_cursor: more.then(|| (offset + limit).to_string()),
        })
    }

    fn highlighter(&self, clauses: &[Clause]) -> Result<Highlighter, SearchError> {
        let mut h = Highlighter {
            analyzer: self.index.tokenizer_for_field(self.fields.all)?,
            en: analyzer(Some(Language::English)),
            fr: analyzer(Some(Language::French)),
            words: Vec::new(),
        };
        let f = self.fields;
        for c in clauses {
            match c {
                Clause::Word {
                    text,
                    negated: false,
                    last,
                } => {
                    for token in self.tokens(f.all, text)? {
                        let stem = |field| -> Result<Vec<String>, SearchError> {
                            self.tokens(field, &token)
                        };
                        h.words.push(HighlightWord {
                            stems: [stem(f.en)?, stem(f.fr)?]
                                .concat()
                                .into_iter()
                                .filter(|s| s.chars().count() >= 3)
                                .collect(),
                            prefix: *last,
                            fuzzy: token.chars().count() >= 5,
                            token,
                        });
                    }
                }
                Clause::Phrase {
                    text,
                    negated: false,
                } => {
                    for token in self.tokens(f.all, text)? {
                        h.words.push(HighlightWord {
                            token,
                            stems: Vec::new(),
                            prefix: false,
                            fuzzy: false,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(h)
    }

    /// The best `want` documents: by relevance (when `ranked`), then recency,
    /// then row order, so that results and their order do not depend on how
    /// the index happens to be segmented.
    fn top(
        &self,
        searcher: &tantivy::Searcher,
        query: &dyn Query,
        ranked: bool,
        want: usize,
    ) -> Result<Vec<(f32, i64, DocAddress)>, SearchError> {
        let date = || (SortByStaticFastValue::<i64>::for_field("date"), Order::Desc);
        let ord = || (SortByStaticFastValue::<u64>::for_field("ord"), Order::Desc);
        Ok(if ranked {
            let by = ((SortBySimilarityScore, Order::Desc), date(), ord());
            searcher
                .search(query, &TopDocs::with_limit(want).order_by(by))?
                .into_iter()
                .map(|((score, date, _), addr)| (score, date.unwrap_or(0), addr))
                .collect()
        } else {
            searcher
                .search(query, &TopDocs::with_limit(want).order_by((date(), ord())))?
                .into_iter()
                .map(|((date, _), addr)| (0.0, date.unwrap_or(0), addr))
                .collect()
        })
    }

    /// Tokens of `text` through the analyzer of `field`.
    fn tokens(&self, field: Field, text: &str) -> Result<Vec<String>, SearchError> {
        let mut analyzer = self.index.tokenizer_for_field(field)?;
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while let Some(t) = stream.next() {
            out.push(t.text.clone());
        }
        Ok(out)
    }

    /// A query matching `text` as written (folded) in `field`; `prefix_last`
    /// lets the last word be unfinished.
    fn phrase(
        &self,
        field: Field,
        text: &str,
        prefix_last: bool,
    ) -> Result<Option<Box<dyn Query>>, SearchError> {
        let tokens = self.tokens(field, text)?;
        let terms: Vec<Term> = tokens
            .iter()
            .map(|t| Term::from_field_text(field, t))
            .collect();
        Ok(match terms.len() {
            0 => None,
            1 if prefix_last => Some(Box::new(FuzzyTermQuery::new_prefix(
                terms[0].clone(),
                0,
                false,
            ))),
            1 => Some(Box::new(TermQuery::new(
                terms[0].clone(),
                IndexRecordOption::WithFreqs,
            ))),
            _ => Some(Box::new(PhraseQuery::new(terms))),
        })
    }

    /// The alternatives of one word: folded, stemmed EN and FR, one typo away
    /// (with `typos`, 5+ letters), and as a prefix when it is the `last` word.
    fn word(
        &self,
        text: &str,
        typos: bool,
        last: bool,
    ) -> Result<Option<Box<dyn Query>>, SearchError> {
        let f = self.fields;
        let folded = self.tokens(f.all, text)?;
        if folded.len() != 1 {
            return self.phrase(f.all, text, false);
        }
        let token = &folded[0];
        let term = Term::from_field_text(f.all, token);
        let mut alts: Vec<(Occur, Box<dyn Query>)> = vec![(
            Occur::Should,
            Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
        )];
        for field in [f.en, f.fr] {
            // Stems shorter than 3 letters match too much ("lea" -> "le").
            if let [stem] = self
                .tokens(field, text)?
                .as_slice()
                .iter()
                .filter(|s| s.chars().count() >= 3)
                .collect::<Vec<_>>()
                .as_slice()
            {
                let q = TermQuery::new(
                    Term::from_field_text(field, stem),
                    IndexRecordOption::WithFreqs,
                );
                alts.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), 0.8))));
            }
        }
        if typos && token.chars().count() >= 5 {
            let q = FuzzyTermQuery::new(term.clone(), 1, true);
            alts.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), 0.3))));
        }
        if last {
            let q = FuzzyTermQuery::new_prefix(term, 0, false);
            alts.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), 0.3))));
        }
        Ok(Some(Box::new(BooleanQuery::new(alts))))
    }

    /// Builds the tantivy query; the flag says whether it is ranked by relevance.
    fn build(
        &self,
        clauses: &[Clause],
        scopes: &[SpaceScope],
        typos: bool,
    ) -> Result<(Box<dyn Query>, bool), SearchError> {
        let f = self.fields;
        let filter = |q: Box<dyn Query>| -> (Occur, Box<dyn Query>) {
            (Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0)))
        };
        // The space filter: every query, here and nowhere else.
        let spaces: Vec<(Occur, Box<dyn Query>)> = scopes
            .iter()
            .map(|s| {
                let t = Term::from_field_u64(f.space, s.id().0 as u64);
                (
                    Occur::Should,
                    Box::new(TermQuery::new(t, IndexRecordOption::Basic)) as Box<dyn Query>,
                )
            })
            .collect();
        let mut all: Vec<(Occur, Box<dyn Query>)> =
            vec![filter(Box::new(BooleanQuery::new(spaces)))];
        let mut ranked = false;
        let day_start = |d: chrono::NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp()
        };
        for c in clauses {
            match c {
                Clause::Word {
                    text,
                    negated: false,
                    last,
                } => {
                    if let Some(q) = self.word(text, typos, *last)? {
                        all.push((Occur::Must, q));
                        ranked = true;
                    }
                }
                Clause::Word {
                    text,
                    negated: true,
                    ..
                } => {
                    if let Some(q) = self.word(text, false, false)? {
                        all.push((Occur::MustNot, q));
                    }
                }
                Clause::Phrase { text, negated } => {
                    if let Some(q) = self.phrase(f.all, text, false)? {
                        all.push((
                            if *negated {
                                Occur::MustNot
                            } else {
                                Occur::Must
                            },
                            q,
                        ));
                        ranked |= !negated;
                    }
                }
                Clause::Kind(kinds) => {
                    let alts = kinds
                        .iter()
                        .map(|k| {
                            let q = TermQuery::new(
                                Term::from_field_text(f.kind, k),
                                IndexRecordOption::Basic,
                            );
                            (Occur::Should, Box::new(q) as Box<dyn Query>)
                        })
                        .collect();
                    all.push(filter(Box::new(BooleanQuery::new(alts))));
                }
                Clause::From(name) | Clause::In(name) => {
                    let field = if matches!(c, Clause::From(_)) {
                        f.sender
                    } else {
                        f.chat
                    };
                    let words: Vec<(Occur, Box<dyn Query>)> = self
                        .tokens(field, name)?
                        .into_iter()
                        .map(|t| {
                            let q = FuzzyTermQuery::new_prefix(
                                Term::from_field_text(field, &t),
                                0,
                                false,
                            );
                            (Occur::Must, Box::new(q) as Box<dyn Query>)
                        })
                        .collect();
                    if words.is_empty() {
                        return Err(SearchError::BadQuery(format!(
                            "{name:?} has no letters or digits"
                        )));
                    }
                    all.push(filter(Box::new(BooleanQuery::new(words))));
                }
                Clause::Before(d) => {
                    let q = RangeQuery::new(
                        std::ops::Bound::Unbounded,
                        std::ops::Bound::Excluded(Term::from_field_i64(f.date, day_start(*d))),
                    );
                    all.push(filter(Box::new(q)));
                }
                Clause::After(d) => {
                    let next = *d + chrono::Days::new(1);
                    let q = RangeQuery::new(
                        std::ops::Bound::Included(Term::from_field_i64(f.date, day_start(next))),
                        std::ops::Bound::Unbounded,
                    );
                    all.push(filter(Box::new(q)));
                }
                Clause::HasCaption => {
                    let q = TermQuery::new(
                        Term::from_field_u64(f.has_caption, 1),
                        IndexRecordOption::Basic,
                    );
                    all.push(filter(Box::new(q)));
                }
            }
        }
        if !all.iter().any(|(o, _)| *o == Occur::Must) {
            all.push((Occur::Must, Box::new(AllQuery)));
        }
        Ok((Box::new(BooleanQuery::new(all)), ranked))
    }
}

/// A number unique per document, for a stable order among equals:
/// `2 × id` for messages, `2 × id + 1` for media items.
fn ord_of(key: &str) -> u64 {
    let (prefix, id) = key.split_once(':').unwrap_or(("", "0"));
    let id: u64 = id.parse().unwrap_or(0);
    id * 2 + u64::from(prefix == "f")
}

fn read_payload(index: &Index) -> Option<Payload> {
    index
        .load_metas()
        .ok()?
        .payload
        .and_then(|p| serde_json::from_str(&p).ok())
}

const MONTHS_EN: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const MONTHS_FR: [&str; 12] = [
    "janvier",
    "fevrier",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "aout",
    "septembre",
    "octobre",
    "novembre",
    "decembre",
];

/// Words that let a date be found by typing it: the year and the month in English and French.
fn date_words(ts: i64) -> String {
    let Some(d) = chrono::DateTime::from_timestamp(ts, 0) else {
        return String::new();
    };
    let m = d.month0() as usize;
    format!("{} {} {}", d.year(), MONTHS_EN[m], MONTHS_FR[m])
}

/// A word of the query, as the highlighter matches it.
struct HighlightWord {
    token: String,
    stems: Vec<String>,
    prefix: bool,
    fuzzy: bool,
}

/// Marks the words of a text that the query matched (exactly, by stem, by
/// prefix or one typo away, as the search itself does) and cuts an excerpt
/// around the first one.
struct Highlighter {
    analyzer: TextAnalyzer,
    en: TextAnalyzer,
    fr: TextAnalyzer,
    words: Vec<HighlightWord>,
}

impl Highlighter {
    fn matches(&self, token: &str, stems: &[String]) -> bool {
        self.words.iter().any(|w| {
            w.token == token
                || (w.prefix && token.starts_with(w.token.as_str()))
                || (w.fuzzy && strsim::damerau_levenshtein(&w.token, token) <= 1)
                || w.stems.iter().any(|s| stems.contains(s))
        })
    }

    /// An HTML excerpt of at most about `max_chars` characters of `text`, matches in `<b>`.
    fn snippet(&mut self, text: &str, max_chars: usize) -> Result<String, SearchError> {
        let (mut en, mut fr) = (self.en.clone(), self.fr.clone());
        let mut marks: Vec<(usize, usize)> = Vec::new();
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        while let Some(t) = stream.next() {
            let original = &text[t.offset_from..t.offset_to];
            let mut stems = Vec::new();
            for a in [&mut en, &mut fr] {
                let mut s = a.token_stream(original);
                while let Some(x) = s.next() {
                    stems.push(x.text.clone());
                }
            }
            if self.matches(&t.text, &stems) {
                marks.push((t.offset_from, t.offset_to));
            }
        }
        // Window: start a little before the first match, on a char boundary.
        let first = marks.first().map_or(0, |m| m.0);
        let mut start = text[..first]
            .char_indices()
            .rev()
            .nth(40)
            .map_or(0, |(i, _)| i);
        if start > 0 {
            start = text[start..]
                .find(' ')
                .map_or(start, |i| start + i + 1)
                .min(first);
        }
        let end = text[start..]
            .char_indices()
            .nth(max_chars)
            .map_or(text.len(), |(i, _)| start + i);
        let mut out = String::new();
        if start > 0 {
            out.push('…');
        }
        let mut pos = start;
        for (a, b) in marks.into_iter().filter(|(a, b)| *a >= start && *b <= end) {
            out.push_str(&html_escape(&text[pos..a]));
            out.push_str("<b>");
            out.push_str(&html_escape(&text[a..b]));
            out.push_str("</b>");
            pos = b;
        }
        out.push_str(&html_escape(&text[pos..end]));
        if end < text.len() {
            out.push('…');
        }
        Ok(out)
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests;
