//! Hostile input: property tests (proptest; `cargo fuzz` needs a nightly
//! toolchain this project does not use) over the parsers that read what
//! strangers send: Telegram updates, WhatsApp export lines, Telegram Desktop
//! exports, uploaded files' magic bytes and image metadata. The property:
//! no panic, no unbounded work, and either a value or a clear error.

use proptest::prelude::*;

use crate::common::*;

fn fixture_update_texts() -> Vec<String> {
    all_fixture_updates()
        .iter()
        .map(|u| u.to_string())
        .collect()
}

/// Mutations of real payloads: truncation, a byte flipped, a chunk duplicated.
fn mutated(base: Vec<String>) -> impl Strategy<Value = String> {
    (0..base.len(), any::<u16>(), any::<u8>(), 0u8..3).prop_map(move |(i, at, byte, how)| {
        let mut b = base[i].clone().into_bytes();
        let at = usize::from(at) % b.len().max(1);
        match how {
            0 => b.truncate(at),
            1 => b[at] = byte,
            _ => {
                let chunk: Vec<u8> = b[at..].iter().take(40).copied().collect();
                b.splice(at..at, chunk);
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn telegram_update_parser_never_panics(raw in mutated(fixture_update_texts())) {
        let _ = appliance::telegram::parse_update(&raw);
    }

    #[test]
    fn telegram_update_parser_takes_any_string(raw in ".{0,400}") {
        prop_assert!(appliance::telegram::parse_update(&raw).is_err() || raw.contains("update_id"));
    }

    #[test]
    fn whatsapp_lines_never_panic(line in "\\PC{0,200}", digits in "[0-9/.,: \\-\\[\\]APMapm\u{200e}\u{202f}]{0,40}") {
        for l in [line.as_str(), digits.as_str(), &format!("{digits} - {line}"), &format!("[{digits}] {line}")] {
            let cleaned = appliance::import::whatsapp::clean(l);
            if let Some(h) = appliance::import::whatsapp::header(&cleaned) {
                let order = appliance::import::whatsapp::decide_order(&[&h]);
                let _ = appliance::import::whatsapp::timestamp(&h, order);
            }
            let _ = appliance::import::whatsapp::body(&cleaned);
        }
    }

    #[test]
    fn telegram_export_reader_returns_an_error_not_a_panic(raw in mutated(vec![
        String::from_utf8(fixture_bytes("telegram-export/personal_chat.json")).unwrap_or_default(),
    ])) {
        let mut n = 0usize;
        let _ = appliance::import::telegram_export::read(raw.as_bytes(), &mut |_, _| { n += 1; Ok(()) });
    }

    #[test]
    fn magic_bytes_sniffing_takes_any_head(head in proptest::collection::vec(any::<u8>(), 0..64), name in "[a-z]{0,8}\\.[a-z]{0,4}") {
        let _ = appliance::vault::sniff(&head, Some("image/jpeg"), Some(&name));
    }

    #[test]
    fn image_metadata_of_damaged_photos_never_panics(cut in 0usize..20_000, at in any::<u16>(), byte in any::<u8>()) {
        let mut b = fixture_bytes("images/Canon_40D.jpg");
        let at = usize::from(at) % b.len();
        b[at] = byte;
        b.truncate(cut.max(16).min(b.len()));
        let dir = tempdir();
        let p = dir.path().join("x.jpg");
        std::fs::write(&p, &b).unwrap();
        let _ = appliance::imaging::analyse(&p, "image/jpeg", 100_000_000);
        let _ = appliance::imaging::capture_time(&p);
        let _ = appliance::imaging::render_file(&p, 100_000_000);
    }
}
