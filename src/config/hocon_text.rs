//! Turning HOCON text into a `Hocon` tree safely: hocon 0.9 panics on some
//! inputs, recurses without bound on deep nesting and misreads some valid
//! text, so the text is screened and rewritten first and panics are caught.

use std::panic::{self, AssertUnwindSafe};

use hocon::{Hocon, HoconLoader};

use crate::error::{Error, Result};

/// Nesting budget of a document, see [`prepare`].
const MAX_NESTING: usize = 200;
/// What one `{` or `[` costs against [`MAX_NESTING`], against 1 per dot of a
/// dotted key: measured, an object level takes about eight times the parser
/// stack of a path segment.
const BRACKET_COST: usize = 8;

/// Parses `text` into a tree, working around what makes hocon 0.9 misbehave.
///
/// hocon's lenient mode silently drops everything after a syntax error, so a
/// strict pass checks the syntax first; the lenient pass then builds the tree,
/// so that an unresolved `${...}` in the application's own keys does not fail
/// ours. hocon panics on some inputs (any unquoted non-ASCII text, odd
/// substitutions) and recurses without bound on deep nesting: [`prepare`]
/// refuses the known cases beforehand, and other panics are caught.
pub(crate) fn parse_document(text: &str, source: &str) -> Result<Hocon> {
    let prepared = prepare(text).map_err(|problem| Error::config(source, problem))?;
    let text = prepared.text.as_str();
    let parsed = panic::catch_unwind(AssertUnwindSafe(|| {
        HoconLoader::new().no_system().strict().load_str(text)?;
        HoconLoader::new().no_system().load_str(text)?.hocon()
    }));
    match parsed {
        Ok(Ok(document)) => Ok(document),
        Ok(Err(err)) => {
            let mut problem = hocon_problem(&err);
            if prepared.unquoted_url {
                problem.push_str(" (an unquoted // starts a comment: put urls in quotes)");
            }
            Err(Error::config(source, problem))
        }
        Err(_) => {
            tracing::warn!(
                source,
                "the hocon parser panicked; reporting a config error"
            );
            Err(Error::config(
                source,
                "invalid hocon: the parser failed on this text",
            ))
        }
    }
}

/// Our wording of a hocon error: lower case, and saying what to do where we
/// know it.
pub(crate) fn hocon_problem(err: &hocon::Error) -> String {
    match err {
        hocon::Error::Parse => "invalid hocon syntax".to_owned(),
        hocon::Error::Deserialization { .. } => {
            "invalid hocon syntax: the text could not be parsed completely (check brackets, \
             quotes and separators)"
                .to_owned()
        }
        hocon::Error::Include { .. }
        | hocon::Error::IncludeNotAllowedFromStr
        | hocon::Error::TooManyIncludes => {
            "include is not supported: put the keys in this file".to_owned()
        }
        other => format!("invalid hocon: {}", lower_first(&other.to_string())),
    }
}

/// A document made ready for hocon.
#[derive(Debug, PartialEq)]
struct Prepared {
    /// The text, with what hocon 0.9 wrongly refuses rewritten: whitespace
    /// at the very end, and blanks inside an empty `{ }`.
    text: String,
    /// An unquoted `scheme://` was seen: the likely cause of a syntax error.
    unquoted_url: bool,
}

/// Bounds the nesting of a document before hocon recurses into it, refuses
/// unquoted non-ASCII text before hocon panics on it, and rewrites what
/// hocon 0.9 cannot read although it is valid HOCON.
///
/// The nesting is over-estimated: each open `{` or `[` (quotes and comments
/// skipped) costs [`BRACKET_COST`] plus the dots of the key before it, and the
/// dots of the token at hand count too.
fn prepare(text: &str) -> std::result::Result<Prepared, String> {
    let text = text.trim_end();
    let bytes = text.as_bytes();
    let mut blanks = Vec::new(); // byte ranges to drop, all ASCII
    let mut unquoted_url = false;
    let mut open: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut dots = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i = find_from(bytes, i + 3, b"\"\"\"").map_or(bytes.len(), |end| end + 2);
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'#' => {
                i = find_from(bytes, i, b"\n").unwrap_or(bytes.len());
                dots = 0;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                unquoted_url |= i > 0 && bytes[i - 1] == b':';
                i = find_from(bytes, i, b"\n").unwrap_or(bytes.len());
                dots = 0;
            }
            open_bracket @ (b'{' | b'[') => {
                let cost = BRACKET_COST + dots;
                open.push(cost);
                depth += cost;
                dots = 0;
                let end = i
                    + 1
                    + bytes[i + 1..]
                        .iter()
                        .take_while(|b| matches!(b, b' ' | b'\t'))
                        .count();
                if open_bracket == b'{' && end > i + 1 && bytes.get(end) == Some(&b'}') {
                    blanks.push(i + 1..end);
                }
            }
            b'}' | b']' => {
                depth -= open.pop().unwrap_or(0);
                dots = 0;
            }
            b'.' => dots += 1,
            b'\n' | b',' => dots = 0,
            // hocon 0.9 panics on these; a precise error is better than a caught panic.
            0x80.. => {
                let line = text[..i].matches('\n').count() + 1;
                return Err(format!(
                    "invalid hocon: unquoted non-ascii text on line {line} (hocon 0.9 cannot \
                     read it: put the value or key in quotes)"
                ));
            }
            _ => {}
        }
        if depth + dots > MAX_NESTING {
            return Err(format!(
                "invalid hocon: nested too deeply (at most {} levels of objects and arrays)",
                MAX_NESTING / BRACKET_COST
            ));
        }
        i += 1;
    }
    let mut rewritten = String::with_capacity(text.len());
    let mut from = 0;
    for blank in blanks {
        rewritten.push_str(&text[from..blank.start]);
        from = blank.end;
    }
    rewritten.push_str(&text[from..]);
    Ok(Prepared {
        text: rewritten,
        unquoted_url,
    })
}

/// The first index at or after `from` where `needle` starts.
fn find_from(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| from + at)
}

/// `text` with its first letter in lower case, for foreign error messages
/// (hocon's, the OS's) quoted in ours.
pub(crate) fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_bounded_outside_quotes_and_comments() {
        let deep = |text: &str| prepare(text).is_err();
        assert!(!deep(&"a{".repeat(20)));
        assert!(deep(&"a{".repeat(30)));
        assert!(deep(&format!("a = [{}]", "[".repeat(30))));
        assert!(deep(&format!("{} = 1", vec!["a"; 300].join("."))));
        assert!(!deep(&format!("a = \"{}\"", "{.".repeat(300))));
        assert!(!deep(&format!("a = \"\"\"{}\"\"\"", "{\"".repeat(300))));
        assert!(!deep(&format!(
            "# {}\n// {}",
            "{".repeat(300),
            "[".repeat(300)
        )));
        assert!(!deep("\"\\"));
        assert!(!deep("}}}]]]"));
    }

    #[test]
    fn what_hocon_wrongly_refuses_is_rewritten() {
        let text = |input: &str| prepare(input).unwrap().text;
        assert_eq!(text("a = 1\n  \t\n"), "a = 1");
        assert_eq!(text("a { }\nb {\t\t}\nc = [ ]"), "a {}\nb {}\nc = [ ]");
        assert_eq!(text("a = \"{ }\" # { }"), "a = \"{ }\" # { }");
        assert_eq!(text("a = \"\"\"{ }\"\"\""), "a = \"\"\"{ }\"\"\"");
        assert_eq!(text("\"é\" { }"), "\"é\" {}");
        assert_eq!(text("{"), "{");
    }

    #[test]
    fn unquoted_non_ascii_is_refused_with_its_line() {
        let err = prepare("a = 1\n# é\nb = \"é\"\nc = é").unwrap_err();
        assert!(err.contains("line 4"), "{err}");
        assert!(prepare("a = \"\"\"é\"\"\" // é").is_ok());
    }

    #[test]
    fn unquoted_urls_are_noticed() {
        assert!(prepare("a = amqp://host/x").unwrap().unquoted_url);
        assert!(!prepare("a = \"amqp://host/x\"").unwrap().unquoted_url);
        assert!(!prepare("a = 1 // comment").unwrap().unquoted_url);
    }
}
