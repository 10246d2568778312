//! Errors with a location and a hint, rendered like a compiler's.
//!
//! A [`Diagnostic`] points at a byte span of the file, says what is wrong and, when we know,
//! how to fix it. Its [`Display`](fmt::Display) is what `lockstep validate-config` prints:
//!
//! ```text
//! /home/me/.config/lockstep/config.toml:7:1: error: unknown key `scal` in [[output]]
//!   |
//! 7 | scal = 2
//!   | ^^^^
//!   = hint: did you mean `scale`? valid keys in [[output]]: `name`, `mode`, `scale`, `position`, `enabled`
//! ```
//!
//! Syntax and type errors come from the `toml` crate with a span; their message text is
//! serde's, which we classify ([`ErrorKind`]) and reword. Validation errors are ours.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use crate::mode::{MODE_ERROR_PREFIX, MODE_SYNTAX};
use crate::schema::{self, TOP_LEVEL};

/// Loading or parsing the configuration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists (or was named explicitly) but could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration; displays the full diagnostic.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

impl ConfigError {
    /// The diagnostic, for an [`Invalid`](Self::Invalid) file.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            ConfigError::Invalid(d) => Some(d),
            ConfigError::Read { .. } => None,
        }
    }
}

/// What kind of mistake a [`Diagnostic`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not valid TOML (unquoted string, missing `=`, duplicate key, …).
    Syntax,
    /// A key or table the model does not have (usually a typo).
    UnknownKey,
    /// A required key is missing (only `x`/`y` of `position` are required).
    MissingKey,
    /// A value of the wrong type, e.g. a string where a number belongs.
    WrongType,
    /// A value of the right type that the key cannot hold, e.g. a negative `repeat_rate`.
    InvalidValue,
    /// A `mode` string that is not `WIDTHxHEIGHT[@HZ]`.
    InvalidMode,
    /// An output `scale` not in (0, 4].
    ScaleOutOfRange,
    /// An output `position` beyond ±[`MAX_POSITION`](crate::MAX_POSITION).
    PositionOutOfRange,
    /// `acquire_timeout_ms = 0`.
    ZeroTimeout,
    /// Two `[[output]]` tables with the same `name` (or two without one).
    DuplicateOutputName,
    /// A `[binds]` key that is not `Modifier+...+Key`.
    InvalidKeyCombo,
    /// A `[binds]` action that does not parse.
    InvalidAction,
    /// A `[layout]` value out of its range (negative gaps, master_ratio outside 0.1–0.9).
    LayoutOutOfRange,
}

/// One error in a configuration file, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnostic {
    /// The file, as given to [`Config::parse`](crate::Config::parse).
    pub path: PathBuf,
    /// 1-based line of the start of the span.
    pub line: usize,
    /// 1-based column (in characters) of the start of the span.
    pub column: usize,
    /// Byte range in the file that the error is about.
    pub span: Range<usize>,
    /// What kind of mistake this is.
    pub kind: ErrorKind,
    /// What is wrong, one line.
    pub message: String,
    /// How to fix it, when we can tell.
    pub hint: Option<String>,
    /// The text of line [`line`](Self::line), without its line break.
    pub source_line: String,
}

impl Diagnostic {
    /// A diagnostic for `span` of `text`.
    pub(crate) fn new(
        path: PathBuf,
        text: &str,
        span: Range<usize>,
        kind: ErrorKind,
        message: String,
        hint: Option<String>,
    ) -> Self {
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let end = floor_char_boundary(text, span.end.clamp(start, text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let source_line = text[line_start..line_end].trim_end_matches('\r').to_owned();
        Diagnostic {
            path,
            line: text[..start].matches('\n').count() + 1,
            column: text[line_start..start].chars().count() + 1,
            span: start..end,
            kind,
            message,
            hint,
            source_line,
        }
    }

    /// `path:line:col: error: message`, the first line of the rendering.
    pub fn summary(&self) -> String {
        format!(
            "{}:{}:{}: error: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        // Keep tabs so the caret lines up with the text above it.
        let before: String = self
            .source_line
            .chars()
            .take(self.column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let rest = self
            .source_line
            .chars()
            .count()
            .saturating_sub(self.column - 1);
        let span_chars = self.span_text_on_line().chars().count();
        // At least one caret; at most to the end of the line (spans of whole tables go on).
        let carets = span_chars.min(rest).max(1);
        writeln!(f, "{}", self.summary())?;
        writeln!(f, "{gutter} |")?;
        writeln!(f, "{number} | {}", self.source_line)?;
        write!(f, "{gutter} | {before}{}", "^".repeat(carets))?;
        if let Some(hint) = &self.hint {
            write!(f, "\n{gutter} = hint: {hint}")?;
        }
        Ok(())
    }
}

impl Diagnostic {
    /// The part of the span on its first line (the span's byte length, counted on the line).
    fn span_text_on_line(&self) -> &str {
        let start: usize = self
            .source_line
            .char_indices()
            .nth(self.column - 1)
            .map_or(self.source_line.len(), |(i, _)| i);
        let end = (start + self.span.len()).min(self.source_line.len());
        let end = floor_char_boundary(&self.source_line, end);
        &self.source_line[start..end]
    }
}

/// Turns a `toml` deserialisation error into a diagnostic with a kind and a hint.
pub(crate) fn from_toml(err: &toml::de::Error, text: &str, path: PathBuf) -> Diagnostic {
    let mut span = err.span().unwrap_or(0..0);
    // toml puts "expected …" of syntax errors on a second line; we want one line.
    let raw = err.message().trim().replace('\n', "; ");
    // toml marks only the first character of a duplicate key; underline all of it.
    if let Some(key) = raw
        .strip_prefix("duplicate key `")
        .and_then(|r| r.split('`').next())
    {
        if text.get(span.start..).is_some_and(|t| t.starts_with(key)) {
            span = span.start..span.start + key.len();
        }
    }
    let (kind, mut message, mut hint) = classify(&raw, key_before(text, span.start));
    // `[[keyboard]]`: an array of tables where one table belongs.
    let at = text.get(span.start..).unwrap_or("");
    if kind == ErrorKind::WrongType && hint.is_none() && !at.starts_with("[[output]]") {
        if let Some(name) = at.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
            let name = name.trim();
            message = format!("`[[{name}]]` is an array of tables, but `{name}` is one table");
            hint = Some(format!(
                "only [[output]] takes double brackets; write `[{name}]` for a single table"
            ));
        }
    }
    Diagnostic::new(path, text, span, kind, message, hint)
}

fn classify(msg: &str, key: Option<&str>) -> (ErrorKind, String, Option<String>) {
    if let Some(rest) = msg.strip_prefix("unknown field ") {
        return unknown_key(rest);
    }
    if let Some(rest) = msg.strip_prefix("missing field ") {
        let name = rest.trim_matches('`');
        let hint = schema::describe(name).map(|d| format!("add `{name}`: {d}"));
        return (ErrorKind::MissingKey, format!("missing key `{name}`"), hint);
    }
    if let Some(rest) = msg.strip_prefix(MODE_ERROR_PREFIX) {
        let message = format!("{MODE_ERROR_PREFIX}{rest}");
        return (
            ErrorKind::InvalidMode,
            message,
            Some(format!("expected {MODE_SYNTAX}")),
        );
    }
    // serde on an enum (`new_windows`, `renderer`): "unknown variant `x`, expected one of ...".
    if let Some(rest) = msg.strip_prefix("unknown variant ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            let for_key = key.map_or(String::new(), |k| format!(" for `{k}`"));
            let hint = key.and_then(|k| schema::describe(k).map(|d| format!("`{k}` takes {d}")));
            return (
                ErrorKind::InvalidValue,
                format!("invalid value{for_key}: expected {expected}, found {found}"),
                hint,
            );
        }
    }
    for (prefix, kind, what) in [
        ("invalid type: ", ErrorKind::WrongType, "wrong type"),
        ("invalid value: ", ErrorKind::InvalidValue, "invalid value"),
    ] {
        let Some(rest) = msg.strip_prefix(prefix) else {
            continue;
        };
        let Some((found, expected)) = rest.rsplit_once(", expected ") else {
            continue;
        };
        let for_key = key.map_or(String::new(), |k| format!(" for `{k}`"));
        let message = format!(
            "{what}{for_key}: expected {}, found {}",
            expected_in_words(expected),
            found_in_words(found)
        );
        let hint = match key.and_then(|k| schema::describe(k).map(|d| (k, d))) {
            Some((k, d)) => Some(format!("`{k}` takes {d}")),
            // `[output]` instead of `[[output]]`: the header has no `key =` before it.
            None if expected == "a sequence" && found == "map" => {
                Some("write `[[output]]`, with double brackets, for each output".to_owned())
            }
            None => None,
        };
        return (kind, message, hint);
    }
    (ErrorKind::Syntax, msg.to_owned(), syntax_hint(msg))
}

fn unknown_key(rest: &str) -> (ErrorKind, String, Option<String>) {
    // serde: "`key`, expected one of `a`, `b`" / "`key`, expected `a` or `b`" /
    // "`key`, expected `a`" / "`key`, there are no fields".
    let (key, expected) = match rest.strip_prefix('`').and_then(|r| r.split_once('`')) {
        Some((key, expected)) => (key, expected),
        None => (rest, ""),
    };
    let valid: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    let section = schema::section_with_keys(&valid).map(|s| s.name);
    let message = match section {
        Some(TOP_LEVEL) => format!("unknown section or key `{key}` at the top level"),
        Some(section) => format!("unknown key `{key}` in {section}"),
        None => format!("unknown key `{key}`"),
    };
    let section_name = section.unwrap_or("this table");
    let listed = valid
        .iter()
        .map(|k| schema::display_key(section_name, k))
        .collect::<Vec<_>>()
        .join(", ");
    let valid_list = if valid.is_empty() {
        format!("{section_name} takes no keys")
    } else if section == Some(TOP_LEVEL) {
        format!("valid top-level tables: {listed}")
    } else {
        format!("valid keys in {section_name}: {listed}")
    };
    let elsewhere = schema::sections_with_key(key, section);
    let hint = if let Some(best) = did_you_mean(key, &valid) {
        format!(
            "did you mean {}? {valid_list}",
            schema::display_key(section_name, best)
        )
    } else if !elsewhere.is_empty() {
        format!(
            "`{key}` belongs in {}; {valid_list}",
            elsewhere.join(" or ")
        )
    } else {
        valid_list
    };
    (ErrorKind::UnknownKey, message, Some(hint))
}

/// The valid key closest to `key`, if it is close enough to be a likely typo.
fn did_you_mean<'a>(key: &str, valid: &'a [String]) -> Option<&'a str> {
    let norm = |s: &str| s.to_lowercase().replace('-', "_");
    let key = norm(key);
    valid
        .iter()
        .map(|v| {
            let v_norm = norm(v);
            let mut d = edit_distance(&key, &v_norm);
            // "acquire_timeout" for "acquire_timeout_ms", "repeat" for "repeat_rate".
            if key.len() >= 3 && (v_norm.starts_with(&key) || key.starts_with(&v_norm)) {
                d = d.min(1);
            }
            (d, v.as_str())
        })
        // Close enough to be a typo, and not a different word of the same length ("z"/"x").
        .filter(|(d, _)| *d <= (key.chars().count() / 3).max(1) && *d < key.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

/// Whether `word` is close enough to `candidate` to be a typo of it.
pub(crate) fn is_close(word: &str, candidate: &str) -> bool {
    did_you_mean(word, &[candidate.to_owned()]).is_some()
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// serde's name for an expected type, in the words of the file format.
fn expected_in_words(expected: &str) -> String {
    match expected {
        "f32" | "f64" => "a number".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative whole number".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a sequence" => "an array".to_owned(),
        e if e.starts_with("struct ") => "a table".to_owned(),
        e => e.to_owned(),
    }
}

/// serde's description of the value found (`string "2"`, `integer `5``, `map`).
fn found_in_words(found: &str) -> String {
    match found {
        "map" => "a table".to_owned(),
        "sequence" => "an array".to_owned(),
        f => f.to_owned(),
    }
}

fn syntax_hint(msg: &str) -> Option<String> {
    let hint = if msg.contains("duplicate key") && msg.contains("in document root") {
        "a [table] may appear once; only [[output]] (double brackets) repeats"
    } else if msg.contains("duplicate key") {
        "each key may appear once per table; remove one of them"
    } else if msg.starts_with("invalid string") {
        "strings must be quoted, e.g. `layout = \"us\"`"
    } else if msg.starts_with("invalid basic string") {
        "a \"string\" must end on the same line, and `\\` in it starts an escape \
         ('single quotes' take the text as is)"
    } else if msg.starts_with("invalid table header") {
        "table headers look like `[keyboard]`, or `[[output]]` for one of several outputs"
    } else if msg.contains("expected `.`, `=`") {
        "keys and values are written `key = value`"
    } else {
        return None;
    };
    Some(hint.to_owned())
}

/// The key whose value starts at `offset`: the last bare key before a `=` on that line
/// (`scale = "2"` → `scale`, `position = { x = 1, y = "a" }` → `y`).
fn key_before(text: &str, offset: usize) -> Option<&str> {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = text[line_start..offset]
        .trim_end()
        .strip_suffix('=')?
        .trim_end();
    let key_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |i| i + 1);
    let key = &before[key_start..];
    (!key.is_empty()).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("scal", "scale"), 1);
        assert_eq!(edit_distance("layuot", "layout"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn suggestions() {
        let valid: Vec<String> = ["layout", "variant", "options", "model", "repeat_rate"]
            .map(String::from)
            .into();
        assert_eq!(did_you_mean("layuot", &valid), Some("layout"));
        assert_eq!(did_you_mean("repeat-rate", &valid), Some("repeat_rate"));
        assert_eq!(did_you_mean("Layout", &valid), Some("layout"));
        assert_eq!(did_you_mean("option", &valid), Some("options"));
        assert_eq!(did_you_mean("xkb_file", &valid), None);
        assert_eq!(did_you_mean("x", &valid), None);
    }

    #[test]
    fn key_before_value() {
        let text = "scale = \"2\"\nposition = { x = 1, y = \"a\" }\n[x]\n";
        assert_eq!(key_before(text, 8), Some("scale"));
        assert_eq!(key_before(text, text.find("\"a\"").unwrap()), Some("y"));
        assert_eq!(key_before(text, text.find("[x]").unwrap()), None);
    }

    #[test]
    fn location_counts_characters_and_clamps() {
        let text = "a = \"é\"\nb = 1\r\nc";
        let d = |span| Diagnostic::new("f".into(), text, span, ErrorKind::Syntax, "m".into(), None);
        let at_b = d(text.find('b').unwrap()..text.find('b').unwrap() + 1);
        assert_eq!(
            (at_b.line, at_b.column, at_b.source_line.as_str()),
            (2, 1, "b = 1")
        );
        let after_e = d(6..7);
        assert_eq!((after_e.line, after_e.column), (1, 6));
        let eof = d(text.len() + 5..text.len() + 9);
        assert_eq!(
            (eof.line, eof.column, eof.span.clone()),
            (3, 2, text.len()..text.len())
        );
    }

    #[test]
    fn renders_like_a_compiler() {
        let text = "\n\n\n\n\n\n\n\n\n[cursor]\n\tsize = \"big\"\n";
        let span = text.find("\"big\"").unwrap()..text.find("\"big\"").unwrap() + 5;
        let d = Diagnostic::new(
            "c.toml".into(),
            text,
            span,
            ErrorKind::WrongType,
            "wrong".into(),
            Some("fix it".into()),
        );
        assert_eq!(
            d.to_string(),
            "c.toml:11:9: error: wrong\n   |\n11 | \tsize = \"big\"\n   | \t       ^^^^^\n   = hint: fix it"
        );
    }
}
