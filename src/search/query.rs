//! The query language a person can guess, parsed into clauses.
//!
//! Grammar (whitespace separates items; quotes group words):
//! - `word` must appear (folded, stemmed, typo-tolerant; the last word also as a prefix);
//! - `"some phrase"` must appear as written (folded);
//! - `-word`, `-"phrase"` must not appear;
//! - `kind:photo|video|voice|...` (several kinds with `|` or `,`), `from:NAME`, `in:CHAT`
//!   (quote names with spaces: `from:"Mamie Jo"`), `before:YYYY-MM-DD`, `after:YYYY-MM-DD`,
//!   `has:caption`.
//!
//! Anything else with a colon (`12:30`, `https://x`) is a plain word.

use chrono::NaiveDate;

/// Kinds of documents a query can ask for with `kind:`.
pub const KINDS: &[&str] = &[
    "message",
    "photo",
    "video",
    "animation",
    "audio",
    "voice",
    "video_note",
    "document",
];

/// One item of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// A word; `last` when it is the final bare word (the one being typed).
    Word {
        /// The word as typed.
        text: String,
        /// `-word`
        negated: bool,
        /// Final bare word of the query.
        last: bool,
    },
    /// A quoted phrase.
    Phrase {
        /// The phrase as typed.
        text: String,
        /// `-"phrase"`
        negated: bool,
    },
    /// `kind:` with one or more kinds.
    Kind(Vec<String>),
    /// `from:` sender name.
    From(String),
    /// `in:` chat title.
    In(String),
    /// `before:` date, exclusive (documents strictly before that day).
    Before(NaiveDate),
    /// `after:` date, exclusive (documents strictly after that day).
    After(NaiveDate),
    /// `has:caption`
    HasCaption,
}

/// Parses a query.
///
/// # Errors
/// A message saying which item is wrong and what is expected.
pub fn parse(q: &str) -> Result<Vec<Clause>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    let read_quoted = |i: &mut usize| -> String {
        // chars[*i] is the opening quote.
        *i += 1;
        let start = *i;
        while *i < chars.len() && chars[*i] != '"' {
            *i += 1;
        }
        let s: String = chars[start..*i].iter().collect();
        *i += 1; // closing quote (or past the end)
        s
    };
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let negated = chars[i] == '-' && i + 1 < chars.len() && !chars[i + 1].is_whitespace();
        if negated {
            i += 1;
        }
        if chars[i] == '"' {
            let text = read_quoted(&mut i);
            if !text.trim().is_empty() {
                out.push(Clause::Phrase { text, negated });
            }
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '"' {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        let filter = token.split_once(':').filter(|(k, _)| {
            matches!(
                k.to_ascii_lowercase().as_str(),
                "kind" | "from" | "in" | "before" | "after" | "has"
            )
        });
        if let (Some((key, value)), false) = (filter, negated) {
            let key = key.to_ascii_lowercase();
            let value = if value.is_empty() && i < chars.len() && chars[i] == '"' {
                read_quoted(&mut i)
            } else {
                value.to_string()
            };
            out.push(filter_clause(&key, &value)?);
            continue;
        }
        out.push(Clause::Word {
            text: token,
            negated,
            last: false,
        });
    }
    // The final item, if a bare word not followed by a space, is being typed.
    let typing = !q.ends_with(char::is_whitespace);
    if let Some(Clause::Word {
        last,
        negated: false,
        ..
    }) = out.last_mut()
    {
        *last = typing;
    }
    Ok(out)
}

fn filter_clause(key: &str, value: &str) -> Result<Clause, String> {
    let date = |v: &str| {
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| format!("{key}: expects a date as YYYY-MM-DD, got {v:?}"))
    };
    Ok(match key {
        "kind" => {
            let kinds: Vec<String> = value
                .split(['|', ','])
                .filter(|k| !k.is_empty())
                .map(str::to_ascii_lowercase)
                .collect();
            if kinds.is_empty() {
                return Err(format!("kind: expects one of {}", KINDS.join(", ")));
            }
            if let Some(bad) = kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
                return Err(format!(
                    "kind:{bad} is not a kind; use one of {}",
                    KINDS.join(", ")
                ));
            }
            Clause::Kind(kinds)
        }
        "from" if !value.trim().is_empty() => Clause::From(value.to_string()),
        "in" if !value.trim().is_empty() => Clause::In(value.to_string()),
        "from" | "in" => {
            return Err(format!(
                "{key}: expects a name, e.g. {key}:Mamie or {key}:\"Mamie Jo\""
            ))
        }
        "before" => Clause::Before(date(value)?),
        "after" => Clause::After(date(value)?),
        "has" if value.eq_ignore_ascii_case("caption") => Clause::HasCaption,
        _ => return Err(format!("has:{value} is not supported; use has:caption")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(t: &str, negated: bool, last: bool) -> Clause {
        Clause::Word {
            text: t.into(),
            negated,
            last,
        }
    }

    #[test]
    fn words_phrases_and_negations() {
        assert_eq!(
            parse("anniversaire \"chez mamie\" -pluie plag").unwrap(),
            vec![
                w("anniversaire", false, false),
                Clause::Phrase {
                    text: "chez mamie".into(),
                    negated: false
                },
                w("pluie", true, false),
                w("plag", false, true),
            ]
        );
        assert_eq!(
            parse("beach 2023 ").unwrap(),
            vec![w("beach", false, false), w("2023", false, false)]
        );
        assert_eq!(
            parse("-\"bad day\"").unwrap(),
            vec![Clause::Phrase {
                text: "bad day".into(),
                negated: true
            }]
        );
        assert_eq!(
            parse("a - b").unwrap(),
            vec![
                w("a", false, false),
                w("-", false, false),
                w("b", false, true)
            ]
        );
    }

    #[test]
    fn filters() {
        assert_eq!(
            parse("kind:photo|video from:\"Mamie Jo\" in:famille after:2023-01-01 before:2024-01-01 has:caption")
                .unwrap(),
            vec![
                Clause::Kind(vec!["photo".into(), "video".into()]),
                Clause::From("Mamie Jo".into()),
                Clause::In("famille".into()),
                Clause::After(NaiveDate::from_ymd_opt(2023, 1, 1).unwrap()),
                Clause::Before(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()),
                Clause::HasCaption,
            ]
        );
        assert_eq!(
            parse("at 12:30").unwrap(),
            vec![w("at", false, false), w("12:30", false, true)]
        );
    }

    #[test]
    fn bad_filters_say_what_to_fix() {
        assert!(parse("kind:selfie").unwrap_err().contains("photo"));
        assert!(parse("before:yesterday")
            .unwrap_err()
            .contains("YYYY-MM-DD"));
        assert!(parse("has:gps").unwrap_err().contains("has:caption"));
        assert!(parse("from:").unwrap_err().contains("name"));
    }
}
