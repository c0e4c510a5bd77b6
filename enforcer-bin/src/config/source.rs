//! The text of a file being parsed, and how positions in it are found.
//!
//! Deserialization errors come with a position from the TOML parser (a byte span) or from
//! serde_json (line and column). Validation errors come with a path ([`Seg`]s) to the
//! offending value; the path is resolved to a position only when an error is reported, through a
//! small tree of spans ([`Node`]) built from the TOML parser's spanned document
//! (`toml::de::DeTable`) or by scanning the JSON text. Building the tree cannot fail on a
//! text the deserializer accepted; should it fail anyway, positions fall back to the
//! nearest enclosing value, then to the start of the file.

use super::{Format, Location};
use core::ops::Range;
use serde::de::DeserializeOwned;
use std::cell::OnceCell;

/// One step of a path into a document: a key (with the spellings it is accepted under) or
/// a list index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(&'static [&'static str]),
    Index(usize),
}

/// A deserialization failure, located.
#[derive(Clone, Debug)]
pub(crate) struct DeError {
    pub(crate) at: Location,
    /// Byte offset of the error, when known (to find the enclosing rule or workload).
    pub(crate) offset: Option<usize>,
    pub(crate) message: String,
}

/// A value in the document and where it is.
#[derive(Debug)]
pub(crate) struct Node {
    span: Range<usize>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Entries: key, key span, value.
    Map(Vec<(String, Range<usize>, Node)>),
    List(Vec<Node>),
    Scalar,
}

/// Nesting deeper than this is not followed when scanning JSON (serde_json stops at 128).
const MAX_DEPTH: usize = 256;

impl Node {
    fn get(&self, seg: Seg) -> Option<&Node> {
        match (&self.kind, seg) {
            (Kind::Map(entries), Seg::Key(names)) => {
                entries.iter().find(|(k, _, _)| names.contains(&k.as_str())).map(|(_, _, v)| v)
            }
            (Kind::List(items), Seg::Index(i)) => items.get(i),
            _ => None,
        }
    }

    /// The node at `path`, or the deepest node on the way to it.
    fn find(&self, path: &[Seg]) -> &Node {
        let mut node = self;
        for &seg in path {
            match node.get(seg) {
                Some(n) => node = n,
                None => break,
            }
        }
        node
    }

    /// The bytes the value and everything in it cover (TOML tables of an array of tables
    /// are spread over lines whose span the parser does not record as one).
    fn extent(&self) -> Range<usize> {
        fn add(r: &mut Option<Range<usize>>, s: Range<usize>) {
            if s.start < s.end {
                *r = Some(match r.take() {
                    Some(r) => r.start.min(s.start)..r.end.max(s.end),
                    None => s,
                });
            }
        }
        let mut r = None;
        add(&mut r, self.span.clone());
        match &self.kind {
            Kind::Map(entries) => {
                for (_, ks, v) in entries {
                    add(&mut r, ks.clone());
                    add(&mut r, v.extent());
                }
            }
            Kind::List(items) => {
                for v in items {
                    add(&mut r, v.extent());
                }
            }
            Kind::Scalar => {}
        }
        r.unwrap_or_else(|| self.span.clone())
    }

    fn from_toml(v: &toml::Spanned<toml::de::DeValue<'_>>) -> Node {
        use toml::de::DeValue;
        let kind = match v.get_ref() {
            DeValue::Table(t) => Kind::Map(
                t.iter()
                    .map(|(k, v)| (k.get_ref().to_string(), k.span(), Node::from_toml(v)))
                    .collect(),
            ),
            DeValue::Array(a) => Kind::List(a.iter().map(Node::from_toml).collect()),
            _ => Kind::Scalar,
        };
        Node { span: v.span(), kind }
    }
}

/// The text of one file and its name, with the span tree built on demand.
#[derive(Debug)]
pub(crate) struct Source<'a> {
    pub(crate) file: &'a str,
    text: &'a str,
    pub(crate) format: Format,
    tree: OnceCell<Option<Node>>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str, format: Format) -> Source<'a> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Source { file, text, format, tree: OnceCell::new() }
    }

    /// Deserialize the whole text.
    pub(crate) fn deserialize<T: DeserializeOwned>(&self) -> Result<T, DeError> {
        match self.format {
            Format::Toml => toml::from_str(self.text).map_err(|e| {
                let offset = e.span().map(|s| s.start);
                DeError {
                    at: self.at_offset(offset.unwrap_or(0)),
                    offset,
                    message: e.message().trim_end().to_string(),
                }
            }),
            Format::Json => serde_json::from_str(self.text).map_err(|e| {
                let (line, column) = (e.line().max(1), e.column().max(1));
                let offset = self.offset_of(line, column);
                let mut message = e.to_string();
                let suffix = format!(" at line {} column {}", e.line(), e.column());
                if let Some(m) = message.strip_suffix(&suffix) {
                    message = m.to_string();
                }
                DeError {
                    at: Location { file: self.file.to_string(), line, column },
                    offset: Some(offset),
                    message,
                }
            }),
        }
    }

    /// The location of a byte offset.
    pub(crate) fn at_offset(&self, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location { file: self.file.to_string(), line, column }
    }

    /// The byte offset of a line and column (serde_json counts bytes in a line).
    fn offset_of(&self, line: usize, column: usize) -> usize {
        let start: usize = self.text.split_inclusive('\n').take(line - 1).map(str::len).sum();
        (start + column - 1).min(self.text.len())
    }

    fn tree(&self) -> Option<&Node> {
        self.tree
            .get_or_init(|| match self.format {
                Format::Toml => toml::de::DeTable::parse(self.text).ok().map(|t| {
                    let span = t.span();
                    let root = toml::Spanned::new(span, toml::de::DeValue::Table(t.into_inner()));
                    Node::from_toml(&root)
                }),
                Format::Json => {
                    let mut s = JsonScanner { b: self.text.as_bytes(), pos: 0 };
                    s.value(0)
                }
            })
            .as_ref()
    }

    /// The location of the value at `path` (or of the nearest enclosing value found).
    pub(crate) fn at_path(&self, path: &[Seg]) -> Location {
        let offset = self.tree().map_or(0, |t| t.find(path).span.start);
        self.at_offset(offset)
    }

    /// The index of the element of the top-level list `key` whose text holds `offset`,
    /// and the text of its `id_key` value when it has one.
    pub(crate) fn element_at(
        &self,
        key: &'static [&'static str],
        offset: usize,
        id_key: &'static [&'static str],
    ) -> Option<(usize, Option<&'a str>)> {
        let Kind::List(items) = &self.tree()?.get(Seg::Key(key))?.kind else {
            return None;
        };
        let text = self.text;
        items
            .iter()
            .enumerate()
            .find(|(_, n)| {
                let r = n.extent();
                r.start <= offset && offset <= r.end
            })
            .map(|(i, n)| {
                let id = n.get(Seg::Key(id_key)).and_then(|v| text.get(v.span.clone()));
                (i, id.map(|s| s.trim_matches('"')))
            })
    }
}

/// Builds a [`Node`] tree from JSON text (already accepted by serde_json, but scanned
/// defensively: any surprise gives `None`).
struct JsonScanner<'b> {
    b: &'b [u8],
    pos: usize,
}

impl JsonScanner<'_> {
    fn ws(&mut self) {
        while self.b.get(self.pos).is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.pos) == Some(&c)).then(|| self.pos += 1)
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        let start = self.pos;
        let kind =
            match *self.b.get(self.pos)? {
                b'{' => {
                    self.pos += 1;
                    let mut entries = Vec::new();
                    if self.eat(b'}').is_none() {
                        loop {
                            self.ws();
                            let ks = self.pos;
                            let key = self.string()?;
                            let kspan = ks..self.pos;
                            self.eat(b':')?;
                            entries.push((key, kspan, self.value(depth + 1)?));
                            if self.eat(b',').is_none() {
                                self.eat(b'}')?;
                                break;
                            }
                        }
                    }
                    Kind::Map(entries)
                }
                b'[' => {
                    self.pos += 1;
                    let mut items = Vec::new();
                    if self.eat(b']').is_none() {
                        loop {
                            items.push(self.value(depth + 1)?);
                            if self.eat(b',').is_none() {
                                self.eat(b']')?;
                                break;
                            }
                        }
                    }
                    Kind::List(items)
                }
                b'"' => {
                    self.string()?;
                    Kind::Scalar
                }
                _ => {
                    while self.b.get(self.pos).is_some_and(|c| {
                        !matches!(c, b',' | b']' | b'}') && !c.is_ascii_whitespace()
                    }) {
                        self.pos += 1;
                    }
                    if self.pos == start {
                        return None;
                    }
                    Kind::Scalar
                }
            };
        Some(Node { span: start..self.pos, kind })
    }

    /// A string (the cursor on its opening quote); returns it decoded.
    fn string(&mut self) -> Option<String> {
        if self.b.get(self.pos) != Some(&b'"') {
            return None;
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let c = *self.b.get(self.pos)?;
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = *self.b.get(self.pos)?;
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex =
                                std::str::from_utf8(self.b.get(self.pos..self.pos + 4)?).ok()?;
                            self.pos += 4;
                            let ch = u32::from_str_radix(hex, 16)
                                .ok()
                                .and_then(char::from_u32)
                                .unwrap_or(char::REPLACEMENT_CHARACTER);
                            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &[&str] = &["rule", "rules"];
    const PORTS: &[&str] = &["ports"];
    const ID: &[&str] = &["id"];

    #[test]
    fn json_paths_resolve_to_line_and_column() {
        let text = "{\n  \"rules\": [\n    {\"id\": 7},\n    {\"id\": 8, \"ports\": [\"a\", \"b\\u00e9\"]}\n  ]\n}\n";
        let s = Source::new("p.json", text, Format::Json);
        let at = s.at_path(&[Seg::Key(RULE), Seg::Index(1), Seg::Key(PORTS), Seg::Index(1)]);
        assert_eq!((at.line, at.column), (4, 30));
        // A missing element falls back to the nearest enclosing value.
        let at = s.at_path(&[Seg::Key(RULE), Seg::Index(1), Seg::Key(PORTS), Seg::Index(9)]);
        assert_eq!((at.line, at.column), (4, 24));
        let off = text.find("\"b").unwrap_or(0);
        assert_eq!(s.element_at(RULE, off, ID), Some((1, Some("8"))));
    }

    #[test]
    fn toml_paths_resolve_to_line_and_column() {
        let text = "x = 1\n\n[[rule]]\nid = 7\n\n[[rule]]\nid = 8\nports = [\"a\", \"é\", \"c\"]\n";
        let s = Source::new("p.toml", text, Format::Toml);
        let at = s.at_path(&[Seg::Key(RULE), Seg::Index(1), Seg::Key(PORTS), Seg::Index(2)]);
        assert_eq!((at.line, at.column), (8, 20));
        let off = text.find("ports").unwrap_or(0);
        assert_eq!(s.element_at(RULE, off, ID), Some((1, Some("8"))));
        let off = text.find("id = 7").unwrap_or(0);
        assert_eq!(s.element_at(RULE, off, ID), Some((0, Some("7"))));
        assert_eq!(s.element_at(RULE, 0, ID), None);
    }

    #[test]
    fn offsets_become_lines_and_character_columns() {
        let s = Source::new("f", "ab\né x\n", Format::Toml);
        let at = s.at_offset(6);
        assert_eq!((at.line, at.column), (2, 3));
        assert_eq!(s.at_offset(999).line, 3);
    }
}
