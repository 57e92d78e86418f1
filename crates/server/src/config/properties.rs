//! The Java properties format (`java.util.Properties.load`) zoo.cfg and dynamic config files
//! are written in: comments, separators, escapes and line continuations.

use super::ConfigError;

/// One logical `key=value` line, unescaped and trimmed like ZooKeeper does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawEntry {
    /// 1-based physical line the logical line starts on.
    pub(super) line: usize,
    pub(super) key: String,
    pub(super) value: String,
}

/// Java's `Properties` treats only these as whitespace between tokens.
pub(super) fn is_prop_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// `String.trim()`: strips every char up to and including U+0020.
pub(super) fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

pub(super) fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Parses text in `java.util.Properties.load` format, keeping every entry in
/// order (later duplicates are resolved by the caller, as `Properties` would).
pub(super) fn parse_properties(text: &str) -> Result<Vec<RawEntry>, ConfigError> {
    // \n, \r and \r\n all end a line in Java's LineReader.
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let physical: Vec<&str> = normalized.split('\n').collect();
    let mut entries = Vec::new();
    let mut i = 0;
    while i < physical.len() {
        let start_line = i + 1;
        let first = physical[i].trim_start_matches(is_prop_ws);
        i += 1;
        // Comments are recognised only at the start of a logical line, and a
        // comment never continues onto the next line.
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        let mut logical = first.to_string();
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            if i >= physical.len() {
                break; // Java drops a dangling backslash at end of input.
            }
            // Leading whitespace of a continuation line is not part of the
            // value; a blank continuation line simply ends the logical line.
            logical.push_str(physical[i].trim_start_matches(is_prop_ws));
            i += 1;
        }
        let (key, value) = split_key_value(&logical);
        let key = unescape(key, start_line)?;
        let value = unescape(value, start_line)?;
        entries.push(RawEntry {
            line: start_line,
            key: java_trim(&key).to_string(),
            value: java_trim(&value).to_string(),
        });
    }
    Ok(entries)
}

/// Splits a logical line at the first unescaped `=`, `:` or whitespace; a
/// whitespace-terminated key may still be followed by one `=` or `:`.
pub(super) fn split_key_value(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    let mut value_start = line.len();
    let mut has_sep = false;
    for (idx, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' {
            key_end = idx;
            value_start = idx + 1;
            has_sep = true;
            break;
        } else if is_prop_ws(c) {
            key_end = idx;
            value_start = idx + c.len_utf8();
            break;
        }
    }
    let rest = &line[value_start..];
    let mut skip = 0;
    for (idx, c) in rest.char_indices() {
        if is_prop_ws(c) {
            skip = idx + 1;
        } else if !has_sep && (c == '=' || c == ':') {
            has_sep = true;
            skip = idx + 1;
        } else {
            skip = idx;
            break;
        }
    }
    (&line[..key_end], &rest[skip..])
}

/// Java's `loadConvert`: `\t \n \r \f`, `\uXXXX`, and `\x` for anything else.
pub(super) fn unescape(s: &str, line: usize) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut units: Vec<u16> = Vec::new(); // pending \u escapes (UTF-16)
    let mut chars = s.chars();
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or('\u{fffd}')));
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut units, &mut out);
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else { break };
        if e == 'u' {
            let hex: String = chars.by_ref().take(4).collect();
            let code = (hex.len() == 4 && hex.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| u16::from_str_radix(&hex, 16).ok())
                .flatten()
                .ok_or_else(|| ConfigError::Syntax {
                    line,
                    reason: "malformed \\uxxxx encoding".to_string(),
                })?;
            units.push(code);
            continue;
        }
        flush(&mut units, &mut out);
        out.push(match e {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\x0c',
            other => other,
        });
    }
    flush(&mut units, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::tests::{load, load_err};

    // Java properties syntax: comments, separators, escapes, continuations, duplicates.
    #[test]
    fn properties_syntax() {
        let text = "# comment\n\
                    ! also a comment \\\n\
                    dataDir /data/zk\n\
                    \x20\x20tickTime : 1500  \n\
                    4lw.commands.whitelist=stat, \\\n\
                    \x20\x20\x20\x20ruok,\\\n\
                    \x20\x20\x20\x20conf\n\
                    odd\\=key=a\\tb\\u0041\n\
                    clientPort=2181\r\n\
                    clientPort=2182\n\
                    emptyValue\n";
        let (cfg, warnings) = load(text);
        assert_eq!(cfg.data_dir, Some(PathBuf::from("/data/zk")));
        assert_eq!(cfg.tick_time_ms, 1500);
        assert_eq!(
            cfg.property("zookeeper.4lw.commands.whitelist"),
            Some("stat, ruok,conf")
        );
        assert!(cfg.four_letter_whitelist.allows("conf"));
        assert_eq!(cfg.property("zookeeper.odd=key"), Some("a\tbA"));
        assert_eq!(cfg.client_port, Some(2182));
        assert_eq!(cfg.property("zookeeper.emptyValue"), Some(""));
        assert_eq!(cfg.entries.len(), 7);
        assert_eq!(
            cfg.entries[2],
            ("4lw.commands.whitelist".into(), "stat, ruok,conf".into())
        );
        // The continuation started on line 5; the duplicate and unknown keys are flagged.
        let keys: Vec<(&str, Option<usize>)> =
            warnings.iter().map(|w| (w.key.as_str(), w.line)).collect();
        assert!(keys.contains(&("clientPort", Some(10))), "{keys:?}");
        assert!(keys.contains(&("odd=key", Some(8))), "{keys:?}");
        assert!(keys.contains(&("emptyValue", Some(11))), "{keys:?}");

        let err = load_err("dataDir=/d\nx=\\u12\n");
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }));
    }
}
