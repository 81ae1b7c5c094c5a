//! The line-level parts of a description — origin, connection, bandwidth, timing and raw
//! attributes — and the lexical helpers every attribute reader shares.

use std::fmt;

/// Why an attribute value was refused; the reader adds the line number and the attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Invalid {
    /// The value does not have the attribute's syntax.
    Value,
    /// A payload type is not a number in 0..=127.
    PayloadType,
    /// An extmap ID is not a number in 1..=255.
    ExtmapId,
    /// A fingerprint's hash function, hex or length is wrong.
    Fingerprint,
}

/// Turns a missing piece of syntax into [`Invalid::Value`].
pub(super) fn need<T>(value: Option<T>) -> Result<T, Invalid> {
    value.ok_or(Invalid::Value)
}

/// A decimal number of ASCII digits only: no sign, no spaces, at most 20 digits.
pub(super) fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// [`parse_u64`] narrowed to a smaller integer type.
pub(super) fn parse_number<T: TryFrom<u64>>(text: &str) -> Option<T> {
    T::try_from(parse_u64(text)?).ok()
}

/// A payload type, 0..=127.
pub(super) fn parse_payload_type(text: &str) -> Result<u8, Invalid> {
    parse_number::<u8>(text)
        .filter(|pt| *pt <= 127)
        .ok_or(Invalid::PayloadType)
}

/// RFC 8866 `token`: one or more of the visible ASCII characters except `"(),/:;<=>?@[\]`.
pub(super) fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| {
            matches!(b, b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'0'..=b'9'
                | b'A'..=b'Z' | b'^'..=b'~')
        })
}

/// The space-separated fields of a value. Runs of spaces count as one separator and spaces at
/// either end are ignored, so that a value the writer puts back with single spaces reads the same.
pub(super) struct Fields<'a>(&'a str);

impl<'a> Fields<'a> {
    pub(super) fn new(value: &'a str) -> Self {
        Self(value)
    }

    /// The next field, if there is one.
    pub(super) fn token(&mut self) -> Option<&'a str> {
        let rest = self.0.trim_start_matches(' ');
        if rest.is_empty() {
            self.0 = rest;
            return None;
        }
        let (token, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        self.0 = rest;
        Some(token)
    }

    /// Everything after the fields read so far, without spaces at either end; `None` if empty.
    pub(super) fn rest(self) -> Option<&'a str> {
        let rest = self.0.trim_matches(' ');
        (!rest.is_empty()).then_some(rest)
    }

    /// `Some` if nothing but spaces is left.
    pub(super) fn end(self) -> Option<()> {
        self.0.trim_start_matches(' ').is_empty().then_some(())
    }
}

/// Writes `items` separated by `separator`.
pub(super) fn write_joined<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    items: &[T],
    separator: &str,
) -> fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

/// `o=`: who made the session and which version of it this is (RFC 8866 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `<username>`; `-` when there is none, as JSEP endpoints write it.
    pub username: String,
    /// `<sess-id>`: a number that stays the same for the whole session.
    pub session_id: u64,
    /// `<sess-version>`: increases with every new offer or answer of the session.
    pub session_version: u64,
    /// `<nettype>`: `IN`.
    pub network_type: String,
    /// `<addrtype>`: `IP4` or `IP6`.
    pub address_type: String,
    /// `<unicast-address>`; JSEP endpoints write a placeholder such as `127.0.0.1`.
    pub address: String,
}

impl Origin {
    /// An origin the way a JSEP endpoint writes it: `- <id> <version> IN IP4 127.0.0.1`.
    pub fn new(session_id: u64, session_version: u64) -> Self {
        Self {
            username: "-".to_owned(),
            session_id,
            session_version,
            network_type: "IN".to_owned(),
            address_type: "IP4".to_owned(),
            address: "127.0.0.1".to_owned(),
        }
    }

    pub(super) fn parse(value: &str) -> Option<Self> {
        let mut fields = Fields::new(value);
        let origin = Self {
            username: fields.token()?.to_owned(),
            session_id: parse_u64(fields.token()?)?,
            session_version: parse_u64(fields.token()?)?,
            network_type: fields.token()?.to_owned(),
            address_type: fields.token()?.to_owned(),
            address: fields.token()?.to_owned(),
        };
        fields.end()?;
        Some(origin)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.network_type,
            self.address_type,
            self.address
        )
    }
}

/// `c=`: the connection address (RFC 8866 §5.7). With ICE it is a placeholder or the default
/// candidate's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    /// `<nettype>`: `IN`.
    pub network_type: String,
    /// `<addrtype>`: `IP4` or `IP6`.
    pub address_type: String,
    /// `<connection-address>`, with `/ttl` and `/count` for multicast left as written.
    pub address: String,
}

impl Connection {
    /// `IN IP4 0.0.0.0`, the placeholder JSEP endpoints write before they have candidates.
    pub fn placeholder() -> Self {
        Self {
            network_type: "IN".to_owned(),
            address_type: "IP4".to_owned(),
            address: "0.0.0.0".to_owned(),
        }
    }

    pub(super) fn parse(value: &str) -> Option<Self> {
        let mut fields = Fields::new(value);
        let connection = Self {
            network_type: fields.token()?.to_owned(),
            address_type: fields.token()?.to_owned(),
            address: fields.token()?.to_owned(),
        };
        fields.end()?;
        Some(connection)
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.network_type, self.address_type, self.address
        )
    }
}

/// `b=<bwtype>:<bandwidth>` (RFC 8866 §5.8), e.g. `AS:2500` or `TIAS:2500000`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bandwidth {
    /// `<bwtype>`: `AS`, `CT`, `TIAS` or another token.
    pub kind: String,
    /// `<bandwidth>`: kbit/s for `AS` and `CT`, bit/s for `TIAS`.
    pub value: u64,
}

impl Bandwidth {
    pub(super) fn parse(value: &str) -> Option<Self> {
        let (kind, amount) = value.split_once(':')?;
        if !is_token(kind) {
            return None;
        }
        Some(Self {
            kind: kind.to_owned(),
            value: parse_u64(amount)?,
        })
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// `t=<start> <stop>` with the `r=` lines that follow it (RFC 8866 §5.9, §5.10). JSEP endpoints
/// write `t=0 0` and no repeats.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timing {
    /// Start time (NTP seconds); 0 for an unbounded session.
    pub start: u64,
    /// Stop time (NTP seconds); 0 for an unbounded session.
    pub stop: u64,
    /// The values of the `r=` lines, kept as written.
    pub repeats: Vec<String>,
}

impl Timing {
    /// `t=0 0`: a session without time bounds.
    pub fn unbounded() -> Self {
        Self {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
        }
    }

    pub(super) fn parse(value: &str) -> Option<Self> {
        let mut fields = Fields::new(value);
        let timing = Self {
            start: parse_u64(fields.token()?)?,
            stop: parse_u64(fields.token()?)?,
            repeats: Vec::new(),
        };
        fields.end()?;
        Some(timing)
    }
}

/// An attribute line `a=<name>[:<value>]` (RFC 8866 §5.13). Attributes the reader does not
/// interpret are kept in this form, value as written, so that the writer puts them back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The attribute name, a token.
    pub name: String,
    /// Everything after the first `:`, as written; `None` for a property attribute.
    pub value: Option<String>,
}

impl Attribute {
    /// An attribute with a name and an optional value.
    pub fn new(name: &str, value: Option<&str>) -> Self {
        Self {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        let (name, value) = match text.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (text, None),
        };
        is_token(name).then(|| Self::new(name, value))
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(value) = &self.value {
            write!(f, ":{value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_plain_digits() {
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("007"), Some(7));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        for bad in [
            "",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1e3",
            "18446744073709551616",
            "0x10",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad:?}");
        }
        assert_eq!(parse_number::<u16>("65535"), Some(65535));
        assert_eq!(parse_number::<u16>("65536"), None);
        assert_eq!(parse_payload_type("127"), Ok(127));
        assert_eq!(parse_payload_type("128"), Err(Invalid::PayloadType));
    }

    #[test]
    fn fields_collapse_spaces() {
        let mut fields = Fields::new("  a  b c  ");
        assert_eq!(fields.token(), Some("a"));
        assert_eq!(fields.rest(), Some("b c"));
        let mut fields = Fields::new("x ");
        assert_eq!(fields.token(), Some("x"));
        assert_eq!(fields.token(), None);
        assert!(Fields::new("  ").end().is_some());
    }

    #[test]
    fn tokens_exclude_separators() {
        assert!(is_token("UDP"));
        assert!(is_token("a~b_c.d"));
        for bad in ["", "a b", "a:b", "a/b", "a=b", "a;b", "ä"] {
            assert!(!is_token(bad), "{bad:?}");
        }
    }
}
