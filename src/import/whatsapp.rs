//! WhatsApp "Export chat" text: `_chat.txt` (iOS) or `WhatsApp Chat with X.txt` (Android).
//!
//! There is no published specification; the format is what the apps write,
//! which varies by platform and locale:
//! - iOS: `[31/12/2020, 23:59:59] Name: text`, also `[3/18/22 14.56.01]` (Indonesian),
//!   `[14:56:01, 3/18/22]` (Vietnamese), `[18/3/2022، 14:56:01]` (Arabic);
//! - Android: `12/31/20, 11:59 PM - Name: text`, also `23.03.22 13:31 - Name: text` (Czech),
//!   `01/01/2019, 11:25 a. m. - ...` (Spanish);
//! - 12- and 24-hour clocks; day-first or month-first dates, decided from the
//!   whole file (per style: one export can mix both), never from one line;
//! - invisible direction marks (U+200E, U+200F...) around dates, names and
//!   system texts; iOS marks system texts and omitted media with U+200E;
//! - a message continues on the following lines until the next header;
//! - attachments: `<attached: NAME>` (iOS), `NAME (file attached)` (Android EN),
//!   `NAME (fichier joint)` (FR) and other locales; omitted media: `<Media omitted>`,
//!   `<Médias omis>`, `image omitted`...
//!
//! This module only parses; [`crate::import`] stores.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// The raw fields of a header line, before the date order is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `true` for the bracketed (iOS) style.
    pub bracket: bool,
    /// The three date numbers as written, in order.
    pub date: [u32; 3],
    /// Digits of the first date number (4 means year first).
    pub first_len: usize,
    /// Hour as written (before AM/PM).
    pub hour: u32,
    /// Minute.
    pub minute: u32,
    /// Second (0 when not written).
    pub second: u32,
    /// `Some(true)` for PM, `Some(false)` for AM, `None` for a 24-hour clock.
    pub pm: Option<bool>,
    /// What follows the header (`Name: text`, or a system text), marks kept.
    pub rest: String,
}

/// The order of the date numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrder {
    /// 31/12/2020
    DayMonthYear,
    /// 12/31/2020
    MonthDayYear,
    /// 2020/12/31
    YearMonthDay,
}

/// Characters WhatsApp inserts that carry no content.
fn is_mark(c: char) -> bool {
    matches!(c, '\r' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}' | '\u{61c}')
}

/// Removes direction marks and turns special spaces into plain ones.
pub fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !is_mark(*c))
        .map(|c| {
            if matches!(c, '\u{a0}' | '\u{202f}' | '\u{2007}') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn numbers(token: &str, seps: &[char]) -> Option<Vec<(u32, usize)>> {
    let parts: Vec<&str> = token.split(|c| seps.contains(&c)).collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    parts
        .iter()
        .map(|p| {
            (!p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| (p.parse().ok(), p.len()))
        })
        .map(|o| o.and_then(|(n, l)| n.map(|n| (n, l))))
        .collect()
}

/// Parses the date-and-time part (`31/12/2020, 23:59:59`, `12/31/20, 11:59 PM`, `14:56:01, 3/18/22`).
/// Date numbers as written, digits of the first, hour, minute, second, PM.
type DateTimeParts = ([u32; 3], usize, u32, u32, u32, Option<bool>);

fn date_time(s: &str) -> Option<DateTimeParts> {
    let s = s.replace(['،', ','], " ").replace('_', " ");
    let lower = s.to_lowercase();
    // AM/PM in its spellings: "PM", "p. m.", "p.m.", "pm".
    let compact: String = lower
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '.')
        .collect();
    let pm = if compact.ends_with("pm") {
        Some(true)
    } else if compact.ends_with("am") {
        Some(false)
    } else {
        None
    };
    let tokens: Vec<&str> = lower
        .split_whitespace()
        .filter(|t| !t.chars().all(|c| c.is_alphabetic() || c == '.'))
        .collect();
    if tokens.len() != 2 {
        return None;
    }
    // The time has ':' (or, after a date, dots as in Indonesian); it may come first (Vietnamese).
    let (date_tok, time_tok) = if tokens[0].contains(':') {
        (tokens[1], tokens[0])
    } else {
        (tokens[0], tokens[1])
    };
    let d = numbers(date_tok, &['/', '.', '-'])?;
    if d.len() != 3 {
        return None;
    }
    let t = numbers(time_tok, &[':', '.'])?;
    let (hour, minute) = (t[0].0, t[1].0);
    let second = t.get(2).map_or(0, |x| x.0);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(([d[0].0, d[1].0, d[2].0], d[0].1, hour, minute, second, pm))
}

/// Recognises a header line (after [`clean`]); `None` for a continuation line.
pub fn header(original: &str) -> Option<Header> {
    let cleaned = clean(original);
    let line = cleaned.trim_start();
    // The text after the header is taken from the original line: its marks matter (see [`body`]).
    let original = original.trim_end_matches(['\r', '\n']);
    let (bracket, stamp, rest) = if let Some(inner) = line.strip_prefix('[') {
        let stamp = &inner[..inner.find(']')?];
        let rest = original.find(']').map_or("", |i| &original[i + 1..]);
        (true, stamp, rest.strip_prefix(' ').unwrap_or(rest))
    } else {
        let dash = line.find(" - ").filter(|d| *d <= 32)?;
        (
            false,
            &line[..dash],
            original.find(" - ").map_or("", |i| &original[i + 3..]),
        )
    };
    let (date, first_len, hour, minute, second, pm) = date_time(stamp)?;
    Some(Header {
        bracket,
        date,
        first_len,
        hour,
        minute,
        second,
        pm,
        rest: rest.to_string(),
    })
}

/// Decides the date order of one style from all its headers.
pub fn decide_order(headers: &[&Header]) -> DateOrder {
    if headers.iter().any(|h| h.first_len == 4) {
        return DateOrder::YearMonthDay;
    }
    if headers.iter().any(|h| h.date[0] > 12) {
        return DateOrder::DayMonthYear;
    }
    if headers.iter().any(|h| h.date[1] > 12) {
        return DateOrder::MonthDayYear;
    }
    // No day above 12 anywhere: 12-hour clocks are mostly US (month first).
    if headers.iter().any(|h| h.pm.is_some()) {
        DateOrder::MonthDayYear
    } else {
        DateOrder::DayMonthYear
    }
}

/// The local date and time of a header, in a given order; `None` if impossible (31/02).
pub fn timestamp(h: &Header, order: DateOrder) -> Option<NaiveDateTime> {
    let [a, b, c] = h.date;
    let (y, m, d) = match order {
        DateOrder::DayMonthYear => (c, b, a),
        DateOrder::MonthDayYear => (c, a, b),
        DateOrder::YearMonthDay => (a, b, c),
    };
    let y = if y < 100 { 2000 + y } else { y };
    let hour = match h.pm {
        Some(true) if h.hour < 12 => h.hour + 12,
        Some(false) if h.hour == 12 => 0,
        _ => h.hour,
    };
    Some(NaiveDateTime::new(
        NaiveDate::from_ymd_opt(y as i32, m, d)?,
        NaiveTime::from_hms_opt(hour, h.minute, h.second)?,
    ))
}

/// What the text after the header is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A message from `sender`.
    Message {
        /// Display name (the `~` of non-contacts removed).
        sender: String,
        /// The text (first line; continuation lines are appended by the caller).
        text: String,
        /// An attached file in the export, by name.
        attachment: Option<String>,
        /// The text says a media file was left out of the export.
        omitted: bool,
    },
    /// A system line (group created, encryption notice, someone joined...).
    System(String),
}

const ATTACHED_SUFFIXES: &[&str] = &[
    "(file attached)",
    "(fichier joint)",
    "(datei angehängt)",
    "(archivo adjunto)",
    "(file allegato)",
    "(arquivo anexado)",
    "(bestand bijgevoegd)",
    "(soubor připojen)",
    "(soubor byl přiložen)",
];

/// Omitted-media notices written as `<...>` (Android).
const OMITTED_BRACKETED: &[&str] = &[
    "<media omitted>",
    "<médias omis>",
    "<média omis>",
    "<medien ausgeschlossen>",
    "<multimedia omitido>",
    "<media omessi>",
    "<média vynechány>",
];

/// Words of the omitted-media notices iOS writes after a direction mark
/// ("image omitted", "image absente", "Bild weggelassen"...).
const OMITTED_HINTS: &[&str] = &[
    "omitted",
    "omis",
    "absent",
    "weggelassen",
    "omessa",
    "omesso",
    "omitid",
    "отсутствует",
    "tidak disertakan",
    "bỏ qua",
    "لم يتم إدراج",
    "vynechán",
    "manquant",
    "retiré",
    "non incluso",
    "esclusa",
    "ausgelassen",
    "не добавлен",
    "الملصقات",
    "đã bỏ",
];

/// Reads `Name: text` (or a system text) after a header. `raw` keeps the marks:
/// iOS starts system texts and omitted-media notices with U+200E.
pub fn body(raw: &str) -> Body {
    let cleaned = clean(raw);
    let Some(colon) = cleaned.find(": ") else {
        return Body::System(cleaned.trim().to_string());
    };
    let sender = cleaned[..colon]
        .trim()
        .trim_start_matches('~')
        .trim()
        .to_string();
    let raw_text = raw.find(": ").map_or("", |i| &raw[i + 2..]);
    let text = cleaned[colon + 2..].to_string();
    let lower = text.trim().to_lowercase();
    if let Some(inner) = lower.strip_prefix('<').and_then(|l| l.split_once(':')) {
        if [
            "attached",
            "joint",
            "pièce jointe",
            "anhang",
            "adjunto",
            "allegato",
        ]
        .iter()
        .any(|k| inner.0.trim() == *k)
        {
            let name = text.trim()[1..].split_once(':').map(|x| x.1).unwrap_or("");
            let name = name.trim().trim_end_matches('>').trim().to_string();
            return Body::Message {
                sender,
                text: String::new(),
                attachment: Some(name),
                omitted: false,
            };
        }
    }
    for suffix in ATTACHED_SUFFIXES {
        if lower.ends_with(suffix) {
            let name = text.trim()[..text.trim().len() - suffix.len()]
                .trim()
                .to_string();
            return Body::Message {
                sender,
                text: String::new(),
                attachment: Some(name),
                omitted: false,
            };
        }
    }
    // iOS starts notices (omitted media, deleted messages, encryption,
    // security codes) with a direction mark; a person's text never does.
    let marked = raw_text.starts_with(['\u{200e}', '\u{200f}'])
        || raw_text.contains(" \u{200e}")
        || raw_text.contains(" \u{200f}");
    if OMITTED_BRACKETED.contains(&lower.trim())
        || lower.ends_with("document omitted")
        || (marked && OMITTED_HINTS.iter().any(|h| lower.contains(h)))
    {
        return Body::Message {
            sender,
            text: String::new(),
            attachment: None,
            omitted: true,
        };
    }
    if raw_text.starts_with(['\u{200e}', '\u{200f}']) {
        // iOS system texts inside a "Name:" line (encryption notice, deleted message...).
        return Body::System(text.trim().to_string());
    }
    Body::Message {
        sender,
        text,
        attachment: None,
        omitted: false,
    }
}

/// Imports a WhatsApp export: a `.zip`, a folder, or the chat `.txt` itself
/// (its media are looked for beside it).
///
/// # Errors
/// When no chat text is found, or the database or disk fails.
pub fn import(
    importer: &mut super::Importer,
    export: &mut super::source::Export,
    txt: Option<&str>,
) -> anyhow::Result<()> {
    use std::io::BufRead;
    let chat_file = match txt {
        Some(t) => t.to_string(),
        None => {
            let files = export.files()?;
            files
                .iter()
                .filter(|f| f.to_ascii_lowercase().ends_with(".txt"))
                .min_by_key(|f| (!f.ends_with("_chat.txt"), f.matches('/').count()))
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no chat text (_chat.txt or \"WhatsApp Chat with ….txt\") in the export"
                    )
                })?
        }
    };
    let base = chat_file
        .rsplit_once('/')
        .map(|(d, _)| format!("{d}/"))
        .unwrap_or_default();
    let stem = chat_file
        .rsplit('/')
        .next()
        .unwrap_or(&chat_file)
        .trim_end_matches(".txt")
        .to_string();
    let title = [
        "WhatsApp Chat with ",
        "WhatsApp Chat - ",
        "Chat WhatsApp avec ",
        "Discussion WhatsApp avec ",
    ]
    .iter()
    .find_map(|p| stem.strip_prefix(p))
    .unwrap_or(if stem == "_chat" {
        "WhatsApp"
    } else {
        stem.as_str()
    })
    .to_string();
    let chat_id = super::stable_id(&["whatsapp", &title]);

    // Pass 1: the date order of each style, from every header of the file.
    let mut headers = Vec::new();
    for line in std::io::BufReader::new(export.stream(&chat_file)?).lines() {
        if let Some(h) = header(&line?) {
            headers.push(h);
        }
    }
    let order_of = |bracket: bool| {
        decide_order(
            &headers
                .iter()
                .filter(|h| h.bracket == bracket)
                .collect::<Vec<_>>(),
        )
    };
    let (ios, android) = (order_of(true), order_of(false));
    drop(headers);

    // Pass 2: messages, with their continuation lines.
    let mut pending: Option<(NaiveDateTime, Body)> = None;
    let mut seen: std::collections::HashMap<i64, u32> = std::collections::HashMap::new();
    let mut flush = |importer: &mut super::Importer,
                     export: &mut super::source::Export,
                     p: Option<(NaiveDateTime, Body)>|
     -> anyhow::Result<()> {
        let Some((at, body)) = p else { return Ok(()) };
        let (sender, text, attachment, omitted) = match body {
            Body::System(_) => {
                importer.skip();
                return Ok(());
            }
            Body::Message {
                sender,
                text,
                attachment,
                omitted,
            } => (sender, text, attachment, omitted),
        };
        let text = text.trim().to_string();
        let ts = at.and_utc().timestamp();
        let base_id = super::stable_id(&[
            &ts.to_string(),
            &sender,
            &text,
            attachment.as_deref().unwrap_or(""),
        ]);
        let n = seen.entry(base_id).or_default();
        *n += 1;
        let message_id = if *n == 1 {
            base_id
        } else {
            super::stable_id(&[&base_id.to_string(), &n.to_string()])
        };
        let msg = super::Message {
            source: "whatsapp",
            chat_id,
            chat_title: Some(title.clone()),
            message_id,
            sender: Some(sender),
            sent_at: ts,
            edited_at: None,
            text: (!text.is_empty()).then_some(text),
            reply_to: None,
            forwarded_from: None,
        };
        if omitted {
            importer.skip();
        }
        match attachment {
            None => importer.message(&msg, None),
            Some(name) => match export.open_file(&format!("{base}{name}")) {
                Ok(mut reader) => importer.message(
                    &msg,
                    Some(super::Attachment {
                        reader: &mut reader,
                        name,
                        kind: None,
                    }),
                ),
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "attachment not in the export");
                    importer.skip();
                    importer.message(&msg, None)
                }
            },
        }
    };
    for line in std::io::BufReader::new(export.stream(&chat_file)?).lines() {
        let line = line?;
        match header(&line) {
            Some(h) => {
                let order = if h.bracket { ios } else { android };
                let Some(at) = timestamp(&h, order) else {
                    importer.summary.unparsed_lines += 1;
                    continue;
                };
                let prev = pending.replace((at, body(&h.rest)));
                flush(importer, export, prev)?;
            }
            None => match pending.as_mut() {
                Some((_, Body::Message { text, .. })) => {
                    text.push('\n');
                    text.push_str(&clean(&line));
                }
                Some((_, Body::System(s))) => {
                    s.push('\n');
                    s.push_str(&line);
                }
                None if line.trim().is_empty() => {}
                None => importer.summary.unparsed_lines += 1,
            },
        }
    }
    flush(importer, export, pending.take())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(line: &str, order: DateOrder) -> String {
        timestamp(&header(line).unwrap(), order)
            .unwrap()
            .to_string()
    }

    #[test]
    fn headers_of_every_style() {
        use DateOrder::*;
        assert_eq!(
            ts("12/31/20, 11:59 PM - Ann: hi", MonthDayYear),
            "2020-12-31 23:59:00"
        );
        assert_eq!(
            ts("[31/12/2020, 23:59:59] Ann: hi", DayMonthYear),
            "2020-12-31 23:59:59"
        );
        assert_eq!(
            ts(
                "\u{200e}[3/27/22, 21:41:55] D: \u{200e}image omitted",
                MonthDayYear
            ),
            "2022-03-27 21:41:55"
        );
        assert_eq!(
            ts("[3/18/22 14.56.01] Elon: x", MonthDayYear),
            "2022-03-18 14:56:01"
        );
        assert_eq!(
            ts("[14:56:01, 3/18/22] Musk Elon: x", MonthDayYear),
            "2022-03-18 14:56:01"
        );
        assert_eq!(
            ts(
                "[\u{200f}18\u{200f}/3\u{200f}/2022، 14:56:01] Elon: x",
                DayMonthYear
            ),
            "2022-03-18 14:56:01"
        );
        assert_eq!(
            ts("23.03.22 13:31 - Dmitry S: Hello", DayMonthYear),
            "2022-03-23 13:31:00"
        );
        assert_eq!(
            ts("01/30/2019, 08:49 p. m. - Jahn Doe: x", MonthDayYear),
            "2019-01-30 20:49:00"
        );
        assert_eq!(
            ts("06/20/2020, 12:08 a. m. - x", MonthDayYear),
            "2020-06-20 00:08:00"
        );
        assert_eq!(
            ts("1/23/23, 3:22_AM - User 1: x", MonthDayYear),
            "2023-01-23 03:22:00"
        );
        assert_eq!(
            ts("[2023/5/4, 16:13:23] ~ User 2: See you!", YearMonthDay),
            "2023-05-04 16:13:23"
        );
        assert_eq!(
            ts("[15/12/2025, 10:32:03 AM] Alice: x", DayMonthYear),
            "2025-12-15 10:32:03"
        );
        assert!(header("consectetur adipiscing elit. Duis libero.").is_none());
        assert!(header("The meeting is at 10:30 - bring cake").is_none());
    }

    #[test]
    fn the_date_order_comes_from_the_whole_file() {
        let h: Vec<Header> = [
            "01/02/19, 11:25 - A: x",
            "05/06/19, 11:25 - A: x",
            "20/06/20, 00:08 - A: x",
        ]
        .iter()
        .map(|l| header(l).unwrap())
        .collect();
        assert_eq!(
            decide_order(&h.iter().collect::<Vec<_>>()),
            DateOrder::DayMonthYear
        );
        let h: Vec<Header> = ["01/02/19, 11:25 - A: x", "06/20/20, 00:08 - A: x"]
            .iter()
            .map(|l| header(l).unwrap())
            .collect();
        assert_eq!(
            decide_order(&h.iter().collect::<Vec<_>>()),
            DateOrder::MonthDayYear
        );
    }

    #[test]
    fn bodies() {
        assert_eq!(
            body("John-John Doe: Lorem ipsum : dolor sit amet."),
            Body::Message {
                sender: "John-John Doe".into(),
                text: "Lorem ipsum : dolor sit amet.".into(),
                attachment: None,
                omitted: false
            }
        );
        assert_eq!(
            body("+12 345 578 created group \"Groupname\""),
            Body::System("+12 345 578 created group \"Groupname\"".into())
        );
        assert!(matches!(body("John Doe:."), Body::System(_)));
        assert_eq!(
            body("Dmitry S: \u{200e}<attached: 00000035-PHOTO-2022-03-27-21-41-55.jpg>"),
            Body::Message {
                sender: "Dmitry S".into(),
                text: String::new(),
                attachment: Some("00000035-PHOTO-2022-03-27-21-41-55.jpg".into()),
                omitted: false
            }
        );
        assert_eq!(
            body("Dmitry S: IMG-20220318-WA0000.jpg (fichier joint)"),
            Body::Message {
                sender: "Dmitry S".into(),
                text: String::new(),
                attachment: Some("IMG-20220318-WA0000.jpg".into()),
                omitted: false
            }
        );
        assert!(matches!(
            body("Dmitry S: <Médias omis>"),
            Body::Message { omitted: true, .. }
        ));
        assert!(matches!(
            body("Dmitry S: \u{200e}image absente"),
            Body::Message { omitted: true, .. }
        ));
        assert!(matches!(
            body("Elon Musk: \u{200e}Messages and calls are end-to-end encrypted."),
            Body::System(_)
        ));
        assert!(
            matches!(body("~\u{202f}User name 2: Of course!"), Body::Message { ref sender, .. } if sender == "User name 2")
        );
    }
}
