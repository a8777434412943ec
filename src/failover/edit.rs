//! Edits a few values of a JSON document in place, keeping everything else byte for byte: the
//! topology is the user's file (often under version control), so a failover changes the lines
//! it must and no others.
//!
//! The text has already been validated by serde_json; the scanner here only finds where
//! values start and end.

use std::ops::Range;

/// A JSON value and where it is.
#[derive(Debug)]
enum Node {
    Object {
        span: Range<usize>,
        members: Vec<(String, Node)>,
    },
    Array {
        items: Vec<Node>,
    },
    Scalar {
        span: Range<usize>,
    },
}

impl Node {
    fn span(&self) -> Option<Range<usize>> {
        match self {
            Node::Object { span, .. } | Node::Scalar { span } => Some(span.clone()),
            Node::Array { .. } => None,
        }
    }

    fn member(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Object { members, .. } => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn skip_space(&mut self) {
        while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn value(&mut self) -> Option<Node> {
        self.skip_space();
        let start = self.at;
        match *self.text.get(self.at)? {
            b'{' => {
                self.at += 1;
                let mut members = Vec::new();
                loop {
                    self.skip_space();
                    match *self.text.get(self.at)? {
                        b'}' => {
                            self.at += 1;
                            break;
                        }
                        b',' => self.at += 1,
                        b'"' => {
                            let key_span = self.string()?;
                            let key: String = serde_json::from_slice(&self.text[key_span]).ok()?;
                            self.skip_space();
                            if self.text.get(self.at) != Some(&b':') {
                                return None;
                            }
                            self.at += 1;
                            members.push((key, self.value()?));
                        }
                        _ => return None,
                    }
                }
                Some(Node::Object {
                    span: start..self.at,
                    members,
                })
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    match *self.text.get(self.at)? {
                        b']' => {
                            self.at += 1;
                            break;
                        }
                        b',' => self.at += 1,
                        _ => items.push(self.value()?),
                    }
                }
                Some(Node::Array { items })
            }
            b'"' => Some(Node::Scalar {
                span: self.string()?,
            }),
            _ => {
                while self.at < self.text.len()
                    && !matches!(self.text[self.at], b',' | b'}' | b']')
                    && !self.text[self.at].is_ascii_whitespace()
                {
                    self.at += 1;
                }
                Some(Node::Scalar {
                    span: start..self.at,
                })
            }
        }
    }

    /// A string's span, quotes included.
    fn string(&mut self) -> Option<Range<usize>> {
        let start = self.at;
        self.at += 1;
        while *self.text.get(self.at)? != b'"' {
            self.at += if self.text[self.at] == b'\\' { 2 } else { 1 };
        }
        self.at += 1;
        Some(start..self.at)
    }
}

/// Where an edit goes in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A top-level member.
    Top(String),
    /// A member of the element of the top-level array `array` whose `name` is `name`.
    Named {
        array: String,
        name: String,
        key: String,
    },
}

/// Sets each target to its JSON value text (already encoded), replacing the old value or
/// adding the member at the start of its object. `None` when a target's object is not found.
pub fn set(text: &str, edits: &[(Target, String)]) -> Option<String> {
    let root = Scanner {
        text: text.as_bytes(),
        at: 0,
    }
    .value()?;
    // (range to replace, new text), applied from the end so earlier offsets stay valid.
    let mut splices: Vec<(Range<usize>, String)> = Vec::new();
    for (target, value) in edits {
        let (object, key) = match target {
            Target::Top(key) => (&root, key),
            Target::Named { array, name, key } => {
                let Some(Node::Array { items }) = root.member(array) else {
                    return None;
                };
                let element = items.iter().find(|item| {
                    item.member("name")
                        .and_then(Node::span)
                        .and_then(|s| serde_json::from_str::<String>(&text[s]).ok())
                        .as_deref()
                        == Some(name)
                })?;
                (element, key)
            }
        };
        match object.member(key) {
            Some(existing) => {
                let span = match existing {
                    Node::Array { .. } => return None,
                    other => other.span()?,
                };
                splices.push((span, value.clone()));
            }
            None => {
                let Node::Object { span, members } = object else {
                    return None;
                };
                let open = span.start + 1;
                let key_json = serde_json::to_string(key).ok()?;
                let insert = match members.first() {
                    // Same line break and indentation as the first member.
                    Some(_) => {
                        let gap_end =
                            open + text[open..].find(|c: char| !c.is_whitespace()).unwrap_or(0);
                        let gap = &text[open..gap_end];
                        format!("{gap}{key_json}: {value},")
                    }
                    None => format!("{key_json}: {value}"),
                };
                splices.push((open..open, insert));
            }
        }
    }
    splices.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    let mut out = text.to_string();
    for (range, new) in splices {
        out.replace_range(range, &new);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{
  "zones": ["contoso.com"],
  "active_pool": "EdgePool1",
  "pools": [
    { "name": "EdgePool1", "site": "S\"1", "preference": 5 },
    {
      "name": "EdgePool2",
      "site": "S2"
    }
  ]
}
"#;

    #[test]
    fn replaces_and_inserts_keeping_the_rest() {
        let edited = set(
            DOC,
            &[
                (Target::Top("active_pool".into()), "\"EdgePool2\"".into()),
                (Target::Top("srv_leader".into()), "\"EdgePool1\"".into()),
                (
                    Target::Named {
                        array: "pools".into(),
                        name: "EdgePool1".into(),
                        key: "preference".into(),
                    },
                    "1".into(),
                ),
                (
                    Target::Named {
                        array: "pools".into(),
                        name: "EdgePool2".into(),
                        key: "preference".into(),
                    },
                    "2".into(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            edited,
            r#"{
  "srv_leader": "EdgePool1",
  "zones": ["contoso.com"],
  "active_pool": "EdgePool2",
  "pools": [
    { "name": "EdgePool1", "site": "S\"1", "preference": 1 },
    {
      "preference": 2,
      "name": "EdgePool2",
      "site": "S2"
    }
  ]
}
"#
        );
        let value: serde_json::Value = serde_json::from_str(&edited).unwrap();
        assert_eq!(value["pools"][1]["preference"], 2);
    }

    #[test]
    fn an_unknown_pool_is_not_edited() {
        let target = Target::Named {
            array: "pools".into(),
            name: "Nope".into(),
            key: "preference".into(),
        };
        assert_eq!(set(DOC, &[(target, "1".into())]), None);
    }
}
