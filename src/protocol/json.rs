//! JSON written byte for byte as Python's `json.dumps(d, indent=2, sort_keys=True)`
//! writes a dict of strings: the metadata object and the organisation configuration
//! are compared (and Content-MD5-hashed) as bytes, so both tools must write the same.
//!
//! Keys sorted by code point (UTF-8 byte order is code-point order), two-space indent,
//! `": "` between key and value, `",\n"` between items, everything outside space..`~`
//! escaped (`\uXXXX`, lowercase hex, surrogate pairs beyond U+FFFF), no trailing newline.

use std::collections::BTreeMap;

/// Writes a string map as Python's `json.dumps(m, indent=2, sort_keys=True)`.
pub fn python_dumps(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "{}".to_string();
    }
    let mut out = String::from("{\n");
    let mut first = true;
    for (key, value) in map {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        out.push_str("  ");
        push_string(&mut out, key);
        out.push_str(": ");
        push_string(&mut out, value);
    }
    out.push_str("\n}");
    out
}

/// The length of `python_dumps(map)`, without writing it.
pub fn python_dumps_len(map: &BTreeMap<String, String>) -> usize {
    if map.is_empty() {
        return 2;
    }
    // "{\n", then per item two spaces and ": ", ",\n" between items, then "\n}".
    let items: usize = map
        .iter()
        .map(|(key, value)| 2 + string_len(key) + 2 + string_len(value))
        .sum();
    2 + items + 2 * (map.len() - 1) + 2
}

/// The length of `text` written by `push_string`, quotes included.
fn string_len(text: &str) -> usize {
    2 + text
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0c}' => 2,
            ' '..='~' => 1,
            other => 6 * other.len_utf16(),
        })
        .sum::<usize>()
}

fn push_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            other => {
                let mut units = [0u16; 2];
                for unit in other.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn matches_python_layout() {
        let text = python_dumps(&map(&[("lang", "dotnet"), ("a", "b")]));
        assert_eq!(text, "{\n  \"a\": \"b\",\n  \"lang\": \"dotnet\"\n}");
    }

    #[test]
    fn the_length_is_that_of_the_text_written() {
        for pairs in [
            &[][..],
            &[("a", "b")][..],
            &[
                ("lang", "dotnet"),
                ("k", "é\u{7f}\"\\\n\t\u{1}😀\u{8}\u{c}\r"),
            ][..],
        ] {
            let m = map(pairs);
            assert_eq!(python_dumps_len(&m), python_dumps(&m).len(), "{pairs:?}");
        }
    }

    #[test]
    fn escapes_as_python_ensure_ascii() {
        let text = python_dumps(&map(&[("k", "é\u{7f}\"\\\n\t\u{1}😀")]));
        assert_eq!(
            text,
            "{\n  \"k\": \"\\u00e9\\u007f\\\"\\\\\\n\\t\\u0001\\ud83d\\ude00\"\n}"
        );
        assert!(text.is_ascii());
    }

    #[test]
    fn sorts_by_code_point() {
        let text = python_dumps(&map(&[("é", "1"), ("z", "2"), ("Z", "3")]));
        let order: Vec<_> = text.lines().skip(1).map(|l| l.trim().to_string()).collect();
        assert_eq!(order[0], "\"Z\": \"3\",");
        assert_eq!(order[1], "\"z\": \"2\",");
        assert_eq!(order[2], "\"\\u00e9\": \"1\"");
    }
}
