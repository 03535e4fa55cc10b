//! Reading HOCON text with hocon-parser into our config tree: the `queue`,
//! `amqp` and `redis` objects, each scalar as its text (see `tree.rs`) but booleans.

use std::path::PathBuf;

use hocon::{HoconValue, ParseOptions, ResolveOptions, ScalarType, TokenKind};
use serde_json::{Map, Value};

use crate::config::tree;
use crate::error::{Error, Result};

/// How deep a document may nest, counting objects, arrays and the segments of
/// dotted keys together: as deep as hocon-parser lets braces go. It bounds
/// braces but not dotted keys, and its parser, resolver and drop all
/// recurse: measured in a debug build, a tree about 120 levels deep
/// overflows a 2 MiB stack, hence the parse on a thread of [`PARSE_STACK`].
/// Real configuration files stay under 10 levels.
pub(crate) const MAX_DEPTH: usize = 128;
/// How many substitutions (`${...}`, and `+=`, which is one) a document may
/// hold: the resolver recurses along a chain of them (measured: a chain of
/// 300 overflows 2 MiB in a debug build), so the parse runs on a thread of
/// [`PARSE_STACK`] with room for this many and more.
pub(crate) const MAX_SUBSTITUTIONS: usize = 256;
/// At most this deep (and with at most [`INLINE_SUBSTITUTIONS`]) a document
/// is parsed on the caller's thread: a quarter of what overflowed 2 MiB.
const INLINE_DEPTH: usize = 30;
/// See [`INLINE_DEPTH`].
const INLINE_SUBSTITUTIONS: usize = 30;
/// The stack of the thread that parses: room for [`MAX_DEPTH`] levels and
/// [`MAX_SUBSTITUTIONS`] nested resolutions several times over, whatever
/// stack the caller has (only what is touched is allocated).
const PARSE_STACK: usize = 16 << 20;

/// Parses `text` (named `source` in errors; `base_dir` is where its
/// `include`s are found) and returns the tree of our objects in it.
///
/// Substitutions resolve against the document and then the process
/// environment (`${?AMQP_URL}`); one left unresolved fails only if it is in
/// one of our objects, so that the application's own keys may be resolved by
/// someone else.
pub(crate) fn tree(text: &str, source: &str, base_dir: Option<PathBuf>) -> Result<Value> {
    let shape = screen(text).map_err(|problem| Error::config(source, problem))?;
    let defaults = tree::defaults()?;
    if shape.fits_any_stack() {
        return parse(text, source, base_dir, defaults);
    }
    let (text, owned_source) = (text.to_owned(), source.to_owned());
    let parsed = std::thread::Builder::new()
        .name("actorbus-config".to_owned())
        .stack_size(PARSE_STACK)
        .spawn(move || parse(&text, &owned_source, base_dir, defaults))
        .map_err(|err| Error::config(source, format!("cannot start the parser: {err}")))?
        .join();
    // hocon-parser has no known panic; should one come, it is a config error
    // like any other (its message went to the panic hook).
    parsed.unwrap_or_else(|_| Err(Error::config(source, "invalid hocon: the parser failed")))
}

/// Refuses, before parsing, what would overflow the parser's stack (see
/// [`MAX_DEPTH`] and [`MAX_SUBSTITUTIONS`]) and a closing brace that closes
/// nothing, after which hocon-parser would drop the rest of the text. Other
/// syntax errors are left to the parser.
fn screen(text: &str) -> std::result::Result<Shape, String> {
    let Ok(tokens) = hocon::tokenize(text) else {
        return Ok(Shape::default());
    };
    // Levels opened by the enclosing braces, each with the dotted segments of
    // the key before it; and the dots seen since the last brace or line.
    let mut open: Vec<usize> = Vec::new();
    let mut opened = 0usize;
    let mut dots = 0usize;
    let mut substitutions = 0usize;
    let mut shape = Shape::default();
    for token in &tokens {
        match token.kind {
            TokenKind::LBrace | TokenKind::LBracket => {
                open.push(dots + 1);
                opened += dots + 1;
                dots = 0;
            }
            TokenKind::RBrace | TokenKind::RBracket => {
                // hocon-parser 1.14 ends a document at a stray closing brace
                // and drops the rest of the text without a word.
                let Some(level) = open.pop() else {
                    return Err(format!(
                        "invalid hocon on line {}: `{}` closes nothing",
                        token.line, token.value
                    ));
                };
                opened -= level;
                dots = 0;
            }
            TokenKind::Newline | TokenKind::Comma => dots = 0,
            TokenKind::Unquoted => {
                dots += token.value.matches('.').count();
                shape.includes |= token.value.starts_with("include");
            }
            TokenKind::Substitution | TokenKind::PlusEquals => substitutions += 1,
            _ => {}
        }
        shape.depth = shape.depth.max(opened + dots);
        if opened + dots > MAX_DEPTH {
            return Err(format!(
                "invalid hocon on line {}: nested deeper than {MAX_DEPTH} levels \
                 (objects, arrays and dotted keys together)",
                token.line
            ));
        }
    }
    if substitutions > MAX_SUBSTITUTIONS {
        return Err(format!(
            "invalid hocon: more than {MAX_SUBSTITUTIONS} substitutions"
        ));
    }
    shape.substitutions = substitutions;
    Ok(shape)
}

/// What [`screen`] saw of a document.
#[derive(Debug, Default)]
struct Shape {
    /// The deepest level, objects, arrays and dotted keys together.
    depth: usize,
    /// How many substitutions it holds.
    substitutions: usize,
    /// Whether it includes other files, which are not screened.
    includes: bool,
}

impl Shape {
    /// Whether the parse fits the stack of any thread (2 MiB and more), so
    /// that it can run on the caller's: a thread per parse costs more than
    /// the parse of a small document.
    fn fits_any_stack(&self) -> bool {
        self.depth <= INLINE_DEPTH && self.substitutions <= INLINE_SUBSTITUTIONS && !self.includes
    }
}

/// The parse proper, on the caller's thread or the parsing one: hocon's
/// tree never leaves it (its drop recurses too).
/// `defaults` is the tree of the defaults, whose objects are ours.
fn parse(text: &str, source: &str, base_dir: Option<PathBuf>, defaults: &Value) -> Result<Value> {
    let mut options = ParseOptions::defaults().with_resolve_substitutions(false);
    if let Some(dir) = base_dir {
        options = options.with_base_dir(dir);
    }
    let document = hocon::parse_string_with_options(text, options)
        .and_then(|document| {
            document.resolve(ResolveOptions::defaults().with_allow_unresolved(true))
        })
        .map_err(|err| Error::config(source, problem(&err.to_string())))?;
    let mut tree = Map::new();
    for section in document.keys() {
        if let Some(value) = document
            .get(section)
            .filter(|_| defaults.get(section).is_some())
        {
            tree.insert(section.to_owned(), convert(section, value)?);
        }
    }
    Ok(Value::Object(tree))
}

/// hocon-parser's message in our words: lower case, and saying what to do
/// where we know it.
fn problem(message: &str) -> String {
    let message = message
        .strip_prefix("ParseError at ")
        .or_else(|| message.strip_prefix("ResolveError at "))
        .map_or_else(|| message.to_owned(), |rest| format!("line {rest}"));
    format!("invalid hocon: {}", lower_first(&message))
}

/// One node of hocon's tree, at dotted `key`, as a node of ours.
fn convert(key: &str, node: &HoconValue) -> Result<Value> {
    Ok(match node {
        HoconValue::Scalar(scalar) if scalar.value_type == ScalarType::Null => Value::Null,
        // Kept apart from strings: a boolean is no number nor duration.
        HoconValue::Scalar(scalar) if scalar.value_type == ScalarType::Boolean => {
            Value::Bool(scalar.raw.eq_ignore_ascii_case("true"))
        }
        HoconValue::Scalar(scalar) => Value::String(scalar.raw.clone()),
        HoconValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| convert(key, item))
                .collect::<Result<_>>()?,
        ),
        HoconValue::Object(map) => Value::Object(
            map.iter()
                .map(|(name, child)| Ok((name.clone(), convert(&format!("{key}.{name}"), child)?)))
                .collect::<Result<_>>()?,
        ),
        // hocon-parser keeps the placeholder's path private; its `Debug`
        // shows it.
        other => {
            let debug = format!("{other:?}");
            let path = debug
                .split_once("path: \"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or("", |(path, _)| path);
            return Err(Error::config(
                key,
                format!("expected a value, found an unresolved substitution ${{{path}}}"),
            ));
        }
    })
}

/// `text` with its first letter in lower case: our error messages are.
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
    fn depth_counts_braces_and_dotted_keys_outside_strings() {
        let dotted = |n: usize| format!("{} = 1", vec!["a"; n].join("."));
        assert!(screen(&dotted(MAX_DEPTH)).is_ok());
        assert!(screen(&dotted(MAX_DEPTH + 2)).is_err());
        let mixed = format!("{}x = 1{}", "a.a { ".repeat(65), " }".repeat(65));
        assert!(screen(&mixed).unwrap_err().contains("deeper than 128"));
        // Dots in quoted strings and comments do not count, nor do closed
        // levels.
        let wide = format!(
            "{}\nq = \"{}\" # {}",
            "a { b = 1 }\n".repeat(200),
            ".".repeat(500),
            ".".repeat(500)
        );
        assert!(screen(&wide).is_ok());
    }

    #[test]
    fn a_stray_closing_brace_is_refused() {
        assert!(screen("a = 1 }\nqueue.driver = redis")
            .unwrap_err()
            .contains("line 1"));
        assert!(screen("a = 1\n]")
            .unwrap_err()
            .contains("`]` closes nothing"));
        assert!(screen("{ a { b = [1, {}] } }").is_ok());
    }

    #[test]
    fn substitutions_are_bounded() {
        let chain = |n: usize| {
            (0..n)
                .map(|i| format!("a{i} = ${{a{}}}\n", i + 1))
                .collect::<String>()
                + &format!("a{n} = 1")
        };
        assert!(screen(&chain(MAX_SUBSTITUTIONS)).is_ok());
        assert!(screen(&chain(MAX_SUBSTITUTIONS + 1))
            .unwrap_err()
            .contains("substitutions"));
    }
}
