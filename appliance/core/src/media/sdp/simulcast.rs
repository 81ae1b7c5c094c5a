//! Simulcast: the RTP streams of a section (`rid`, RFC 8851) and how they are sent
//! (`simulcast`, RFC 8853).

use std::fmt;

use super::line::{Fields, Invalid, need, write_joined};
use super::rtp::Parameter;

/// RFC 8852 `rid-syntax`: letters, digits, `-` and `_`.
fn is_rid_id(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The direction of a `rid` or of a `simulcast` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RidDirection {
    /// `send`: the side that wrote the description sends this stream.
    Send,
    /// `recv`: the side that wrote the description receives this stream.
    Recv,
}

impl RidDirection {
    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Recv => "recv",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "send" => Some(Self::Send),
            "recv" => Some(Self::Recv),
            _ => None,
        }
    }
}

/// `a=rid:<id> <send|recv> [<restrictions>]`: one RTP stream of a section (RFC 8851 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rid {
    /// The RID, letters, digits, `-` and `_`.
    pub id: String,
    /// Whether the writer of the description sends or receives the stream.
    pub direction: RidDirection,
    /// Restrictions such as `pt=96,97`, `max-width=1280`, `max-fps=30`, in order.
    pub restrictions: Vec<Parameter>,
}

impl Rid {
    /// A RID without restrictions.
    pub fn new(id: &str, direction: RidDirection) -> Self {
        Self {
            id: id.to_owned(),
            direction,
            restrictions: Vec::new(),
        }
    }

    pub(super) fn parse(value: &str) -> Result<Self, Invalid> {
        let mut fields = Fields::new(value);
        let id = need(fields.token().filter(|id| is_rid_id(id)))?;
        let direction = need(fields.token().and_then(RidDirection::from_name))?;
        Ok(Self {
            id: id.to_owned(),
            direction,
            restrictions: Parameter::parse_list(fields.rest())?,
        })
    }

    /// The value of a restriction, e.g. `max-width`.
    pub fn restriction(&self, name: &str) -> Option<&str> {
        Parameter::find(&self.restrictions, name)
    }
}

impl fmt::Display for Rid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.id, self.direction.as_str())?;
        if !self.restrictions.is_empty() {
            f.write_str(" ")?;
            write_joined(f, &self.restrictions, ";")?;
        }
        Ok(())
    }
}

/// One RID in a `simulcast` list, perhaps paused (`~`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SimulcastRid {
    /// The RID, as in an `a=rid` line of the section.
    pub id: String,
    /// Written with `~`: the stream is paused.
    pub paused: bool,
}

impl fmt::Display for SimulcastRid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.paused {
            f.write_str("~")?;
        }
        f.write_str(&self.id)
    }
}

/// A simulcast stream: one RID, or several alternatives of which one is sent.
pub type SimulcastStream = Vec<SimulcastRid>;

/// `a=simulcast:send <list> recv <list>` (RFC 8853 §5.1). Lists separate streams with `;` and
/// the alternatives of one stream with `,`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Simulcast {
    /// The streams the writer of the description sends.
    pub send: Vec<SimulcastStream>,
    /// The streams the writer of the description receives.
    pub recv: Vec<SimulcastStream>,
}

impl Simulcast {
    pub(super) fn parse(value: &str) -> Result<Self, Invalid> {
        let mut fields = Fields::new(value);
        let mut simulcast = Self::default();
        while let Some(direction) = fields.token() {
            let direction = need(RidDirection::from_name(direction))?;
            let list = Self::parse_list(need(fields.token())?)?;
            let slot = match direction {
                RidDirection::Send => &mut simulcast.send,
                RidDirection::Recv => &mut simulcast.recv,
            };
            need(slot.is_empty().then_some(()))?;
            *slot = list;
        }
        need((!simulcast.send.is_empty() || !simulcast.recv.is_empty()).then_some(()))?;
        Ok(simulcast)
    }

    fn parse_list(list: &str) -> Result<Vec<SimulcastStream>, Invalid> {
        list.split(';')
            .map(|stream| {
                stream
                    .split(',')
                    .map(|rid| {
                        let (id, paused) = match rid.strip_prefix('~') {
                            Some(id) => (id, true),
                            None => (rid, false),
                        };
                        need(is_rid_id(id).then_some(()))?;
                        Ok(SimulcastRid {
                            id: id.to_owned(),
                            paused,
                        })
                    })
                    .collect()
            })
            .collect()
    }

    /// The RIDs of one direction, alternatives included, in order.
    pub fn rids(&self, direction: RidDirection) -> impl Iterator<Item = &SimulcastRid> {
        match direction {
            RidDirection::Send => &self.send,
            RidDirection::Recv => &self.recv,
        }
        .iter()
        .flatten()
    }
}

impl fmt::Display for Simulcast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (direction, streams) in [
            (RidDirection::Send, &self.send),
            (RidDirection::Recv, &self.recv),
        ] {
            if streams.is_empty() {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{} ", direction.as_str())?;
            for (index, stream) in streams.iter().enumerate() {
                if index > 0 {
                    f.write_str(";")?;
                }
                write_joined(f, stream, ",")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulcast_reads_alternatives_and_pauses() {
        let simulcast = Simulcast::parse("recv 1,~2;3 send h;~m").expect("valid simulcast");
        assert_eq!(simulcast.recv.len(), 2);
        assert_eq!(simulcast.recv[0].len(), 2);
        assert!(simulcast.recv[0][1].paused);
        let send: Vec<&str> = simulcast
            .rids(RidDirection::Send)
            .map(|rid| rid.id.as_str())
            .collect();
        assert_eq!(send, ["h", "m"]);
        assert_eq!(simulcast.to_string(), "send h;~m recv 1,~2;3");
        for bad in [
            "",
            "send",
            "send a;;b",
            "send a,",
            "send ~",
            "send a send b",
            "up a",
        ] {
            assert_eq!(Simulcast::parse(bad), Err(Invalid::Value), "{bad:?}");
        }
    }
}
