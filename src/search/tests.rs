use super::*;
use crate::db::spaces::{operator_scope, Space, SpaceId};

fn scope(id: i64) -> SpaceScope {
    operator_scope(Space {
        id: SpaceId(id),
        slug: format!("s{id}"),
        name: format!("S{id}"),
    })
}

/// 2023-07-14 12:00 UTC
const JULY_2023: i64 = 1_689_336_000;

fn doc(key: &str, space: i64, kind: &str, date: i64, text: &str, sender: &str) -> IndexDoc {
    IndexDoc {
        key: key.into(),
        space: SpaceId(space),
        kind: kind.into(),
        date,
        text: text.into(),
        file_name: None,
        sender: sender.into(),
        chat: "Famille Martin".into(),
        camera: None,
        mime: None,
        has_caption: kind != "message" && !text.is_empty(),
        language: "both".into(),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    search: Search,
}

fn index(docs: Vec<IndexDoc>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let search = Search::open(dir.path()).unwrap();
    let mut w = search.writer().unwrap();
    let docs: Vec<(String, Option<IndexDoc>)> =
        docs.into_iter().map(|d| (d.key.clone(), Some(d))).collect();
    search.apply(&w, &docs).unwrap();
    search.commit(&mut w, "g1").unwrap();
    Fixture { _dir: dir, search }
}

fn keys(f: &Fixture, q: &str) -> Vec<String> {
    keys_in(f, q, &[scope(1)])
}

fn keys_in(f: &Fixture, q: &str, scopes: &[SpaceScope]) -> Vec<String> {
    f.search
        .search(scopes, q, 50, None)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| format!("{}:{}", if h.kind == "message" { "m" } else { "f" }, h.id))
        .collect()
}

fn corpus() -> Fixture {
    index(vec![
        doc(
            "m:1",
            1,
            "message",
            JULY_2023,
            "Joyeux anniversaire Mamie ! On fête ça à la plage",
            "Léa",
        ),
        doc(
            "m:2",
            1,
            "message",
            JULY_2023 + 60,
            "Noël chez les grands-parents, la neige était belle",
            "Paul",
        ),
        doc(
            "f:3",
            1,
            "photo",
            JULY_2023 + 120,
            "Beach day with the kids, running on the beaches",
            "Mario",
        ),
        doc("f:4", 1, "video", JULY_2023 - 86_400 * 400, "", "Mario"),
        doc(
            "m:5",
            2,
            "message",
            JULY_2023,
            "Anniversaire secret de l'autre famille",
            "Zoé",
        ),
        doc("f:6", 1, "voice", JULY_2023 + 180, "", "Mamie Jo"),
    ])
}

#[test]
fn accents_are_folded_both_ways() {
    let f = corpus();
    assert_eq!(keys(&f, "noel"), ["m:2"]);
    assert_eq!(keys(&f, "NOËL"), ["m:2"]);
    assert_eq!(keys(&f, "fete"), ["m:1"]);
    assert_eq!(keys(&f, "etait belle"), ["m:2"]);
}

#[test]
fn french_and_english_stems_match() {
    let f = corpus();
    // "anniversaires" (plural) finds "anniversaire"; "beach run" finds "beaches ... running".
    assert_eq!(keys(&f, "anniversaires mamie "), ["m:1"]);
    assert_eq!(keys(&f, "beach run "), ["f:3"]);
}

#[test]
fn one_typo_in_long_words_and_prefix_of_the_last_word() {
    let f = corpus();
    assert_eq!(keys(&f, "anniversiare "), ["m:1"], "transposition");
    assert_eq!(keys(&f, "anniversaite "), ["m:1"], "substitution");
    assert!(
        keys(&f, "nael ").is_empty(),
        "short words need exact spelling"
    );
    assert_eq!(keys(&f, "annive"), ["m:1"], "word being typed");
    assert!(
        keys(&f, "annive ").is_empty(),
        "a finished word is not a prefix"
    );
}

#[test]
fn phrases_and_exclusions() {
    let f = corpus();
    assert_eq!(keys(&f, "\"la plage\""), ["m:1"]);
    assert!(keys(&f, "\"plage la\"").is_empty());
    assert_eq!(keys(&f, "la -plage "), ["m:2"]);
    assert_eq!(keys(&f, "-\"la neige\" la "), ["m:1"]);
}

#[test]
fn filters_by_kind_sender_chat_date_and_caption() {
    let f = corpus();
    assert_eq!(
        keys(&f, "kind:photo|video"),
        ["f:3", "f:4"],
        "filter-only queries: newest first"
    );
    assert_eq!(keys(&f, "from:mario"), ["f:3", "f:4"]);
    assert_eq!(keys(&f, "from:\"mamie jo\""), ["f:6"]);
    assert_eq!(keys(&f, "from:mam"), ["f:6"], "names match by prefix");
    assert_eq!(keys(&f, "in:martin kind:voice"), ["f:6"]);
    assert_eq!(keys(&f, "before:2023-01-01"), ["f:4"]);
    assert_eq!(keys(&f, "after:2023-07-13 kind:photo"), ["f:3"]);
    assert!(
        keys(&f, "after:2023-07-14 kind:photo").is_empty(),
        "after: is exclusive of the day"
    );
    assert_eq!(keys(&f, "has:caption"), ["f:3"]);
}

#[test]
fn dates_and_people_are_searchable_words() {
    let f = corpus();
    assert_eq!(keys(&f, "beach 2023 "), ["f:3"]);
    assert_eq!(keys(&f, "juillet mario "), ["f:3"]);
    assert_eq!(keys(&f, "lea "), ["m:1"]);
}

#[test]
fn other_spaces_are_invisible() {
    let f = corpus();
    assert_eq!(keys(&f, "anniversaire "), ["m:1"]);
    assert_eq!(keys_in(&f, "anniversaire ", &[scope(2)]), ["m:5"]);
    let mut both = keys_in(&f, "anniversaire ", &[scope(1), scope(2)]);
    both.sort();
    assert_eq!(both, ["m:1", "m:5"]);
    assert!(keys_in(&f, "anniversaire", &[]).is_empty());
    assert!(keys_in(&f, "kind:message", &[scope(3)]).is_empty());
}

#[test]
fn ranked_by_relevance_then_recency() {
    let f = index(vec![
        doc("m:1", 1, "message", 1_000, "photo", "a"),
        doc("m:2", 1, "message", 3_000, "photo", "a"),
        doc("m:3", 1, "message", 2_000, "photo", "a"),
        doc(
            "m:4",
            1,
            "message",
            4_000,
            "une photo parmi beaucoup d'autres mots dans ce long message du soir",
            "a",
        ),
    ]);
    assert_eq!(keys(&f, "photo "), ["m:2", "m:3", "m:1", "m:4"]);
}

#[test]
fn snippets_highlight_matches_and_escape_html() {
    let f = index(vec![doc(
        "m:1",
        1,
        "message",
        1,
        "<script>x</script> la plage est belle",
        "a",
    )]);
    let page = f.search.search(&[scope(1)], "plage ", 10, None).unwrap();
    let s = &page.hits[0].snippet;
    assert!(s.contains("<b>plage</b>"), "{s}");
    assert!(!s.contains("<script>"), "{s}");
}

#[test]
fn deleted_documents_leave_the_results_and_pages_follow_the_cursor() {
    let f = index(
        (1..=25)
            .map(|i| doc(&format!("m:{i}"), 1, "message", i, "bonjour", "a"))
            .collect(),
    );
    let first = f.search.search(&[scope(1)], "bonjour ", 10, None).unwrap();
    assert_eq!(first.hits.len(), 10);
    let second = f
        .search
        .search(&[scope(1)], "bonjour ", 10, first.next_cursor.as_deref())
        .unwrap();
    assert_eq!(second.hits[0].id, 15);
    let third = f
        .search
        .search(&[scope(1)], "bonjour ", 10, second.next_cursor.as_deref())
        .unwrap();
    assert_eq!((third.hits.len(), third.next_cursor), (5, None));
    let mut w = f.search.writer().unwrap();
    f.search.apply(&w, &[("m:25".to_string(), None)]).unwrap();
    f.search.commit(&mut w, "g1").unwrap();
    let after = f.search.search(&[scope(1)], "bonjour ", 10, None).unwrap();
    assert_eq!(after.hits[0].id, 24);
}

#[test]
fn bad_queries_are_explained() {
    let f = corpus();
    let err = f
        .search
        .search(&[scope(1)], "kind:selfie", 10, None)
        .unwrap_err();
    assert!(matches!(err, SearchError::BadQuery(m) if m.contains("photo")));
}

#[test]
fn an_outdated_schema_is_rebuilt_on_open() {
    let f = corpus();
    assert_eq!(
        f.search.payload().unwrap(),
        Payload {
            generation: "g1".into(),
            schema: SCHEMA_VERSION
        }
    );
    assert!(!Search::open(f._dir.path()).unwrap().fresh);
}

#[test]
fn snippets_mark_prefix_typo_and_stem_matches_and_cut_long_texts() {
    let long = format!(
        "{} la fête de Noël avec les enfants {}",
        "avant ".repeat(40),
        "après ".repeat(40)
    );
    let f = index(vec![doc("m:1", 1, "message", 1, &long, "a")]);
    let s = &f
        .search
        .search(&[scope(1)], "enfant noel fet", 10, None)
        .unwrap()
        .hits[0]
        .snippet;
    assert!(
        s.contains("<b>Noël</b>") && s.contains("<b>enfants</b>") && s.contains("<b>fête</b>"),
        "{s}"
    );
    assert!(
        s.starts_with('…') && s.ends_with('…') && s.chars().count() < 200,
        "{s}"
    );
    let s = &f
        .search
        .search(&[scope(1)], "enfnats ", 10, None)
        .unwrap()
        .hits[0]
        .snippet;
    assert!(s.contains("<b>enfants</b>"), "typo: {s}");
}
