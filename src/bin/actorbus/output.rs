//! Printing: deliveries as text (payload as text, or a hex dump for
//! binary), JSON of anything `Serialize` (deliveries and stats in the
//! library's own shape), tables with aligned columns, and the one way to
//! write standard output.

use std::fmt::Write as _;
use std::io::Write as _;

use actorbus::Delivery;
use serde::Serialize;

use crate::failure::Failure;

/// Writes `text` to standard output.
pub(crate) fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(Failure::io("cannot write to standard output"))
}

/// Writes `value` to standard output as pretty JSON and a newline, its
/// fields in their declared order.
pub(crate) fn print_json(value: &impl Serialize) -> Result<(), Failure> {
    print(&format!("{}\n", to_json(value, true)?))
}

/// Writes `value` to standard output as one line of JSON (for streams of
/// records, such as `stats --watch --json`).
pub(crate) fn print_json_line(value: &impl Serialize) -> Result<(), Failure> {
    print(&format!("{}\n", to_json(value, false)?))
}

/// Serialized straight to text: through `serde_json::Value` the fields
/// would come out sorted by name.
fn to_json(value: &impl Serialize, pretty: bool) -> Result<String, Failure> {
    let text = match pretty {
        true => serde_json::to_string_pretty(value),
        false => serde_json::to_string(value),
    };
    text.map_err(|error| Failure::Other(format!("cannot write JSON: {error}")))
}

/// A delivery as text: one `name  value` line per field and header, then
/// the payload, as text or as a hex dump.
pub(crate) fn delivery_text(delivery: &Delivery) -> String {
    let mut out = String::new();
    let payload = delivery.payload();
    let _ = writeln!(out, "id       {}", delivery.id());
    let _ = writeln!(out, "queue    {}", delivery.queue());
    let _ = writeln!(out, "attempt  {}", delivery.attempt());
    for (name, value) in delivery.headers() {
        let _ = writeln!(out, "header   {name}: {value}");
    }
    match as_text(payload) {
        Some(text) => {
            let _ = writeln!(out, "payload  {} bytes, text", payload.len());
            out.push_str(text);
            if !text.is_empty() && !text.ends_with('\n') {
                out.push('\n');
            }
        }
        None => {
            let _ = writeln!(out, "payload  {} bytes, binary (hex)", payload.len());
            out.push_str(&hex_dump(payload));
        }
    }
    out
}

/// The payload as text when it is UTF-8 a terminal shows as it is: no
/// control characters but line breaks and tabs.
fn as_text(payload: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(payload).ok()?;
    let plain = text
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'));
    plain.then_some(text)
}

/// `hexdump -C` style: offset, 16 bytes in hex, the printable ones.
fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (line, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", line * 16);
        for (i, byte) in chunk.iter().enumerate() {
            let gap = if i == 8 { "  " } else { " " };
            let _ = write!(out, "{gap}{byte:02x}");
        }
        let missing = 16 - chunk.len();
        let pad = missing * 3 + usize::from(chunk.len() <= 8);
        let shown: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(out, "{:pad$}  |{shown}|", "");
    }
    out
}

/// `1 queue`, `2 queues`, `0 dead letters`.
pub(crate) fn count(n: u64, thing: &str) -> String {
    match n {
        1 => format!("1 {thing}"),
        n => format!("{n} {thing}s"),
    }
}

/// A table: the first column left-aligned (names), the others
/// right-aligned (numbers), two spaces apart.
#[derive(Debug)]
pub(crate) struct Table {
    /// Column titles.
    header: Vec<String>,
    /// One entry per row, as many cells as titles.
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|&title| title.to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines of text.
    pub(crate) fn render(&self) -> String {
        let lines = std::iter::once(&self.header).chain(&self.rows);
        let mut widths = vec![0; self.header.len()];
        for cells in lines.clone() {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for cells in lines {
            for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
                match i {
                    0 => {
                        let _ = write!(out, "{cell:<width$}");
                    }
                    _ => {
                        let _ = write!(out, "  {cell:>width$}");
                    }
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_plain_utf8_only() {
        assert_eq!(as_text(b"hello\n\tworld"), Some("hello\n\tworld"));
        assert_eq!(as_text("héllo".as_bytes()), Some("héllo"));
        assert_eq!(as_text(b"\x00\x01"), None);
        assert_eq!(
            as_text(b"\x1b[2J"),
            None,
            "escape sequences are not printed raw"
        );
        assert_eq!(as_text(&[0xff, 0xfe]), None);
    }

    #[test]
    fn hex_dumps_show_offsets_bytes_and_printable_text() {
        let dump = hex_dump(b"0123456789abcdef\x00\xffz");
        let lines: Vec<&str> = dump.lines().collect();
        assert_eq!(
            lines[0],
            "00000000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|"
        );
        assert_eq!(
            lines[1],
            "00000010  00 ff 7a                                          |..z|"
        );
    }

    #[test]
    fn json_keeps_the_declared_field_order() {
        #[derive(Serialize)]
        struct Pair {
            zebra: u8,
            apple: u8,
        }
        let pair = Pair { zebra: 1, apple: 2 };
        assert_eq!(to_json(&pair, false).unwrap(), r#"{"zebra":1,"apple":2}"#);
    }

    #[test]
    fn counts_are_singular_or_plural() {
        assert_eq!(count(1, "queue"), "1 queue");
        assert_eq!(count(0, "dead letter"), "0 dead letters");
        assert_eq!(count(2, "queue"), "2 queues");
    }

    #[test]
    fn tables_align_names_left_and_numbers_right() {
        let mut table = Table::new(&["queue", "ready"]);
        table.row(vec!["a-long-name".to_owned(), "1".to_owned()]);
        table.row(vec!["b".to_owned(), "12345".to_owned()]);
        assert_eq!(
            table.render(),
            "queue        ready\na-long-name      1\nb            12345\n"
        );
    }
}
