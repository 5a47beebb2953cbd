//! Search benchmark: the appliance's index beside SQLite FTS5, same corpus, same queries, one run.
//!
//! `cargo run --release --example bench_search -- [N]` (default N = 1,000,000 messages).
//!
//! Corpus (deterministic, seeded): short chat messages, ~60 % English and 40 % French,
//! Zipf-distributed words (s = 1.05) over a hand-written head of common words with
//! accents and a synthetic tail, some code-switching, @mentions, #tags and numbers,
//! the shape of `../shared/bench/gen_messages.py`. Queries: 1,000 of 1–3 content words
//! (80 % taken from one real message, 20 % independent draws) and 200 "heavy" queries
//! of 1–2 very common words, as in `../shared/bench/fts5_bench.py`.
//!
//! Engines, each on one core:
//! - appliance: `Search::search` as the server runs it (folding, French and English
//!   stems, typo tolerance, prefix of the last word, recency tie-break, snippets),
//!   top 20, AND semantics; index built with the server's 20 MB writer budget;
//! - FTS5 (bundled SQLite via rusqlite): external-content table,
//!   `unicode61 remove_diacritics 2`, `MATCH ? ORDER BY rank LIMIT 20` joined to the
//!   content (AND semantics), built with 'rebuild' then 'optimize'.

use std::{path::Path, time::Instant};

use appliance::{
    db::{
        search::IndexDoc,
        spaces::{operator_scope, Space, SpaceId},
    },
    search::Search,
};
use rand::{rngs::StdRng, Rng, SeedableRng};

const EN_HEAD: &str =
    "the to and a i you it of is in that for on my this me be with so have just was are
not at we but can do what all your if get like up out no know they about one now will
good from time love day today there go new how see when thanks think lol he she back
great here more some going really want happy people got home work them night tomorrow
please sorry yes ok okay need come make photo look well our nice morning week weekend
birthday dinner meeting tonight call still right last first much best family friends
guys thank after before because their would could should also very year years life world
fun baby beautiful team game car house trip beach summer winter coffee lunch party pic
picture video link check update news school class office city park train late early soon";
const FR_HEAD: &str =
    "de la le et les des en un une du que est pour qui dans à par plus pas au sur ne se
ce il je tu vous nous on elle ils sont avec son sa ses mais comme ou été être avoir fait
faire très bien aussi tout tous cette leur même merci bonjour bonsoir oui non demain soir
matin photo maison travail ami amis famille anniversaire dîner réunion
ça va trop bon bonne journée semaine vacances plage hiver café déjeuner fête photos
vidéo lien école bureau ville parc train tard tôt bientôt voiture enfants bébé équipe
match jeu année vie monde beau belle génial super cool heureux heureuse désolé
après avant parce encore déjà toujours jamais rien quelque chose ici";

struct Vocab {
    words: Vec<String>,
    /// Words of the hand-written head (the most frequent).
    head: usize,
    cum: Vec<f64>,
}

impl Vocab {
    fn new(head: &str, tail: Vec<String>) -> Self {
        let mut words: Vec<String> = Vec::new();
        for w in head
            .split_whitespace()
            .chain(tail.iter().map(String::as_str))
        {
            if !words.iter().rev().take(400).any(|x| x == w) {
                words.push(w.to_string());
            }
        }
        let head = head.split_whitespace().count().min(words.len());
        let mut acc = 0.0;
        let cum = (1..=words.len())
            .map(|r| {
                acc += 1.0 / (r as f64).powf(1.05);
                acc
            })
            .collect();
        Vocab { words, head, cum }
    }
    fn draw(&self, rng: &mut StdRng) -> (usize, &str) {
        let x = rng.random::<f64>() * self.cum.last().unwrap();
        let i = self
            .cum
            .partition_point(|c| *c < x)
            .min(self.words.len() - 1);
        (i, &self.words[i])
    }
}

/// Pronounceable synthetic words; French ones carry accents now and then.
fn tail(rng: &mut StdRng, n: usize, french: bool) -> Vec<String> {
    let cons = [
        "b", "c", "d", "f", "g", "l", "m", "n", "p", "r", "s", "t", "v", "ch", "tr", "gr", "pl",
    ];
    let vow_en = ["a", "e", "i", "o", "u", "ea", "oo", "y"];
    let vow_fr = [
        "a", "e", "i", "o", "u", "é", "è", "ou", "ai", "eau", "ê", "ô",
    ];
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let syl = rng.random_range(2..=4);
        let mut w = String::new();
        for _ in 0..syl {
            w.push_str(cons[rng.random_range(0..cons.len())]);
            let v = if french {
                vow_fr[rng.random_range(0..vow_fr.len())]
            } else {
                vow_en[rng.random_range(0..vow_en.len())]
            };
            w.push_str(v);
        }
        if rng.random_bool(0.3) {
            w.push_str(cons[rng.random_range(0..cons.len())]);
        }
        if seen.insert(w.clone()) {
            out.push(w);
        }
    }
    out
}

struct Corpus {
    messages: Vec<String>,
    queries: Vec<String>,
    heavy: Vec<String>,
}

fn corpus(n: usize) -> Corpus {
    let mut rng = StdRng::seed_from_u64(42);
    let en = Vocab::new(EN_HEAD, tail(&mut rng, 40_000, false));
    let fr = Vocab::new(FR_HEAD, tail(&mut rng, 60_000, true));
    let mut messages = Vec::with_capacity(n);
    let mut samples: Vec<Vec<(usize, String)>> = Vec::new();
    for i in 0..n {
        let (main, other) = if rng.random_bool(0.6) {
            (&en, &fr)
        } else {
            (&fr, &en)
        };
        let len = ((rng.random::<f64>() * 1.2 + 1.6).exp() as usize).clamp(1, 60);
        let mut words = Vec::with_capacity(len);
        let mut plain = Vec::new();
        for _ in 0..len {
            let r: f64 = rng.random();
            if r < 0.06 {
                words.push(other.draw(&mut rng).1.to_string());
            } else if r < 0.075 {
                words.push(format!("@user{:05}", rng.random_range(0..5000)));
            } else if r < 0.085 {
                words.push(format!("#{}", main.words[rng.random_range(300..800)]));
            } else if r < 0.095 {
                words.push(rng.random_range(0..2100).to_string());
            } else {
                let (rank, w) = main.draw(&mut rng);
                words.push(w.to_string());
                plain.push((rank, w.to_string()));
            }
        }
        if i % 50 == 0 {
            samples.push(plain);
        }
        messages.push(words.join(" "));
    }
    let mut queries = Vec::new();
    while queries.len() < 1000 {
        let k = [1, 1, 2, 2, 2, 3][rng.random_range(0..6)];
        let mut terms: Vec<String> = Vec::new();
        if rng.random_bool(0.8) {
            let s = &samples[rng.random_range(0..samples.len())];
            let cand: Vec<&String> = s
                .iter()
                .filter(|(r, _)| *r >= 100)
                .map(|(_, w)| w)
                .collect();
            if cand.len() < k {
                continue;
            }
            while terms.len() < k {
                let w = cand[rng.random_range(0..cand.len())].clone();
                if !terms.contains(&w) {
                    terms.push(w);
                }
            }
        } else {
            let v = if rng.random_bool(0.6) { &en } else { &fr };
            while terms.len() < k {
                let (r, w) = v.draw(&mut rng);
                if r >= 100 && !terms.iter().any(|t| t == w) {
                    terms.push(w.to_string());
                }
            }
        }
        queries.push(terms.join(" "));
    }
    let heavy = (0..200)
        .map(|_| {
            let v = if rng.random_bool(0.6) { &en } else { &fr };
            let pool = &v.words[30..200.min(v.head)];
            let k = [1, 1, 2][rng.random_range(0..3)];
            (0..k)
                .map(|_| pool[rng.random_range(0..pool.len())].clone())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    Corpus {
        messages,
        queries,
        heavy,
    }
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct Lat {
    p50: f64,
    p99: f64,
    hits: usize,
}

fn measure(queries: &[String], mut run: impl FnMut(&str) -> usize) -> Lat {
    for q in queries.iter().take(50) {
        run(q); // warm-up
    }
    let mut t = Vec::with_capacity(queries.len() * 3);
    let mut hits = 0;
    for _ in 0..3 {
        for q in queries {
            let s = Instant::now();
            hits += run(q);
            t.push(s.elapsed().as_secs_f64() * 1e3);
        }
    }
    Lat {
        p50: pct(&mut t, 0.5),
        p99: pct(&mut t, 0.99),
        hits: hits / 3,
    }
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let root = std::env::temp_dir().join("appliance-bench-search");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let t = Instant::now();
    let c = corpus(n);
    let words: usize = c.messages.iter().map(|m| m.split(' ').count()).sum();
    println!(
        "corpus: {n} messages, {:.1} words/msg, {:.1} MB, generated in {:.1} s; queries e.g. {:?}, heavy e.g. {:?}",
        words as f64 / n as f64,
        c.messages.iter().map(String::len).sum::<usize>() as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        &c.queries[..3],
        &c.heavy[..3]
    );

    // appliance
    let idx_dir = root.join("index");
    let search = Search::open(&idx_dir)?;
    let mut writer = search.writer()?;
    let t = Instant::now();
    for (chunk_no, chunk) in c.messages.chunks(10_000).enumerate() {
        let docs: Vec<(String, Option<IndexDoc>)> = chunk
            .iter()
            .enumerate()
            .map(|(j, text)| {
                let id = chunk_no * 10_000 + j + 1;
                let key = format!("m:{id}");
                let doc = IndexDoc {
                    key: key.clone(),
                    space: SpaceId(1),
                    kind: "message".into(),
                    date: 1_700_000_000 + id as i64 * 37,
                    text: text.clone(),
                    file_name: None,
                    sender: format!("user{:05}", id % 5000),
                    chat: "Famille".into(),
                    camera: None,
                    mime: None,
                    has_caption: false,
                    language: "both".into(),
                };
                (key, Some(doc))
            })
            .collect();
        search.apply(&writer, &docs)?;
    }
    search.commit(&mut writer, "bench")?;
    writer.wait_merging_threads()?;
    let build_s = t.elapsed().as_secs_f64();
    let search = Search::open(&idx_dir)?;
    let scope = [operator_scope(Space {
        id: SpaceId(1),
        slug: "family".into(),
        name: "Family".into(),
    })];
    let ours = |qs: &[String]| {
        measure(qs, |q| {
            search
                .search(&scope, &format!("{q} "), 20, None)
                .map(|p| p.hits.len())
                .unwrap_or(0)
        })
    };
    let ours_normal = ours(&c.queries);
    let ours_heavy = ours(&c.heavy);

    // FTS5
    let db = rusqlite::Connection::open(root.join("fts.db"))?;
    db.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-262144; PRAGMA mmap_size=268435456;
         CREATE TABLE msg(id INTEGER PRIMARY KEY, body TEXT);
         CREATE VIRTUAL TABLE msg_fts USING fts5(body, content='msg', content_rowid='id',
             tokenize='unicode61 remove_diacritics 2');",
    )?;
    db.execute_batch("BEGIN")?;
    {
        let mut st = db.prepare("INSERT INTO msg(id, body) VALUES (?1, ?2)")?;
        for (i, m) in c.messages.iter().enumerate() {
            st.execute(rusqlite::params![i as i64 + 1, m])?;
        }
    }
    let t = Instant::now();
    db.execute_batch("INSERT INTO msg_fts(msg_fts) VALUES('rebuild'); COMMIT;")?;
    db.execute_batch("INSERT INTO msg_fts(msg_fts) VALUES('optimize');")?;
    let fts_build_s = t.elapsed().as_secs_f64();
    let fts_bytes: i64 = db
        .query_row(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'msg_fts%'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    let mut st = db.prepare(
        "SELECT m.id, m.body FROM msg_fts JOIN msg m ON m.id = msg_fts.rowid WHERE msg_fts MATCH ?1 ORDER BY rank LIMIT 20",
    )?;
    let mut fts = |qs: &[String]| {
        measure(qs, |q| {
            let expr = q
                .split_whitespace()
                .map(|w| format!("\"{w}\""))
                .collect::<Vec<_>>()
                .join(" ");
            st.query_map([expr], |r| r.get::<_, i64>(0))
                .map(|rows| rows.count())
                .unwrap_or(0)
        })
    };
    let fts_normal = fts(&c.queries);
    let fts_heavy = fts(&c.heavy);

    println!();
    println!("| {n} messages, 1 core | appliance (tantivy) | SQLite FTS5 | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| index build, docs/s | {:.0} | {:.0} | {:.2} |",
        n as f64 / build_s,
        n as f64 / fts_build_s,
        fts_build_s / build_s
    );
    println!(
        "| index size, MB | {:.1} | {:.1} | {:.2} |",
        dir_size(&idx_dir) as f64 / 1e6,
        fts_bytes as f64 / 1e6,
        dir_size(&idx_dir) as f64 / fts_bytes.max(1) as f64
    );
    for (name, a, b) in [
        ("1-3 words", &ours_normal, &fts_normal),
        ("heavy (common words)", &ours_heavy, &fts_heavy),
    ] {
        println!(
            "| {name}: p50 ms | {:.3} | {:.3} | {:.2} |",
            a.p50,
            b.p50,
            a.p50 / b.p50
        );
        println!(
            "| {name}: p99 ms | {:.3} | {:.3} | {:.2} |",
            a.p99,
            b.p99,
            a.p99 / b.p99
        );
        println!("| {name}: hits per pass | {} | {} | |", a.hits, b.hits);
    }
    println!("\nratio = appliance / FTS5 for times and sizes (below 1 is better), FTS5 / appliance for build rate.");
    println!(
        "The appliance also folds accents both ways, stems French and English, tolerates one typo,"
    );
    println!("completes the last word and breaks ties by recency; FTS5 does none of these here.");
    Ok(())
}
