//! The transport attributes: ICE (RFC 8839) candidates and credentials, DTLS fingerprint and
//! setup role (RFC 8122, RFC 8842), and BUNDLE groups (RFC 8843).

use std::fmt;

use super::line::{Fields, Invalid, is_token, need, parse_number, write_joined};

/// Longest `ice-ufrag` and `ice-pwd` (RFC 8839 §5.4).
const MAX_ICE_CREDENTIAL_LEN: usize = 256;

/// Shortest `ice-ufrag` (RFC 8839 §5.4).
const MIN_ICE_UFRAG_LEN: usize = 4;

/// Shortest `ice-pwd` (RFC 8839 §5.4).
const MIN_ICE_PWD_LEN: usize = 22;

/// Longest candidate foundation (RFC 8839 §5.1).
const MAX_FOUNDATION_LEN: usize = 32;

/// RFC 8839 `ice-char`: letters, digits, `+` and `/`.
fn is_ice_chars(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Whether `text` is a valid `ice-ufrag` value: 4 to 256 ICE characters.
pub(super) fn is_ice_ufrag(text: &str) -> bool {
    (MIN_ICE_UFRAG_LEN..=MAX_ICE_CREDENTIAL_LEN).contains(&text.len()) && is_ice_chars(text)
}

/// Whether `text` is a valid `ice-pwd` value: 22 to 256 ICE characters.
pub(super) fn is_ice_pwd(text: &str) -> bool {
    (MIN_ICE_PWD_LEN..=MAX_ICE_CREDENTIAL_LEN).contains(&text.len()) && is_ice_chars(text)
}

/// `a=setup`: which side starts the DTLS handshake (RFC 4145, RFC 8842).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    /// `actpass`: the offerer lets the answerer choose.
    ActPass,
    /// `active`: this side is the DTLS client.
    Active,
    /// `passive`: this side is the DTLS server.
    Passive,
    /// `holdconn`: no connection for now.
    HoldConn,
}

impl Setup {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActPass => "actpass",
            Self::Active => "active",
            Self::Passive => "passive",
            Self::HoldConn => "holdconn",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Self> {
        [Self::ActPass, Self::Active, Self::Passive, Self::HoldConn]
            .into_iter()
            .find(|setup| setup.as_str() == name)
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hash function of a certificate fingerprint. MD5 and MD2 are refused (RFC 8122 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFunction {
    /// `sha-1`.
    Sha1,
    /// `sha-224`.
    Sha224,
    /// `sha-256`, which every WebRTC endpoint supports (RFC 8827 §6.5).
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
}

impl HashFunction {
    /// The name as the writer puts it, in lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "sha-1",
            Self::Sha224 => "sha-224",
            Self::Sha256 => "sha-256",
            Self::Sha384 => "sha-384",
            Self::Sha512 => "sha-512",
        }
    }

    /// Length of the digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha224 => 28,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// Names compare without regard to case (RFC 8122 §5).
    pub(super) fn from_name(name: &str) -> Option<Self> {
        [
            Self::Sha1,
            Self::Sha224,
            Self::Sha256,
            Self::Sha384,
            Self::Sha512,
        ]
        .into_iter()
        .find(|hash| hash.as_str().eq_ignore_ascii_case(name))
    }
}

/// `a=fingerprint`: the hash of the certificate the DTLS peer must present (RFC 8122 §5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// The hash function.
    pub hash_function: HashFunction,
    /// The digest; its length is the hash function's digest length.
    pub value: Vec<u8>,
}

impl Fingerprint {
    /// `<hash-func> <XX:XX:...>`: hex pairs of either case, separated by colons, exactly as many
    /// as the hash function's digest has bytes.
    pub(super) fn parse(value: &str) -> Result<Self, Invalid> {
        let mut fields = Fields::new(value);
        let hash_function = fields
            .token()
            .and_then(HashFunction::from_name)
            .ok_or(Invalid::Fingerprint)?;
        let hex = fields.token().ok_or(Invalid::Fingerprint)?;
        fields.end().ok_or(Invalid::Fingerprint)?;
        let value = hex
            .split(':')
            .map(|pair| {
                let digits = pair.as_bytes();
                if digits.len() != 2 || !digits.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                u8::from_str_radix(pair, 16).ok()
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or(Invalid::Fingerprint)?;
        if value.len() != hash_function.digest_len() {
            return Err(Invalid::Fingerprint);
        }
        Ok(Self {
            hash_function,
            value,
        })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hash_function.as_str())?;
        for (index, byte) in self.value.iter().enumerate() {
            let separator = if index == 0 { ' ' } else { ':' };
            write!(f, "{separator}{byte:02X}")?;
        }
        Ok(())
    }
}

/// The type of an ICE candidate (RFC 8445 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateType {
    /// `host`: an address of the endpoint itself.
    Host,
    /// `srflx`: the address a STUN server saw.
    ServerReflexive,
    /// `prflx`: an address learnt from a connectivity check.
    PeerReflexive,
    /// `relay`: an address on a TURN server.
    Relayed,
}

impl CandidateType {
    /// The name after `typ`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Host => "host",
            Self::ServerReflexive => "srflx",
            Self::PeerReflexive => "prflx",
            Self::Relayed => "relay",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Self::Host,
            Self::ServerReflexive,
            Self::PeerReflexive,
            Self::Relayed,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// A candidate string is not valid RFC 8839 syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("ICE candidate is not valid")]
pub struct InvalidCandidate;

/// `a=candidate`: one ICE candidate (RFC 8839 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// Equal for candidates of the same type, base and server; 1 to 32 ICE characters.
    pub foundation: String,
    /// 1 for RTP (and, with rtcp-mux, for everything), 2 for RTCP.
    pub component: u16,
    /// `udp` or `tcp`, as written.
    pub transport: String,
    /// The candidate's priority (RFC 8445 §5.1.2).
    pub priority: u32,
    /// An IP address, or an mDNS name such as `….local` that browsers write to hide addresses.
    pub address: String,
    /// The port.
    pub port: u16,
    /// The candidate type, after `typ`.
    pub kind: CandidateType,
    /// `raddr`: the related address of a reflexive or relayed candidate.
    pub related_address: Option<String>,
    /// `rport`: the related port.
    pub related_port: Option<u16>,
    /// Further name/value pairs, as written (`generation 0`, `tcptype passive`, …).
    pub extensions: Vec<(String, String)>,
}

impl Candidate {
    /// Reads a candidate as trickle ICE carries it: the attribute value, optionally with the
    /// `candidate:` or `a=candidate:` prefix.
    pub fn parse(text: &str) -> Result<Self, InvalidCandidate> {
        let text = text.strip_prefix("a=").unwrap_or(text);
        let text = text.strip_prefix("candidate:").unwrap_or(text);
        Self::parse_value(text).ok_or(InvalidCandidate)
    }

    pub(super) fn parse_value(value: &str) -> Option<Self> {
        let mut fields = Fields::new(value);
        let foundation = fields.token()?;
        if foundation.len() > MAX_FOUNDATION_LEN || !is_ice_chars(foundation) {
            return None;
        }
        let component = parse_number::<u16>(fields.token()?).filter(|c| (1..=256).contains(c))?;
        let transport = fields.token()?;
        let priority = parse_number::<u32>(fields.token()?)?;
        let address = fields.token()?;
        let port = parse_number::<u16>(fields.token()?)?;
        if fields.token()? != "typ" {
            return None;
        }
        let kind = CandidateType::from_name(fields.token()?)?;
        let mut candidate = Self {
            foundation: foundation.to_owned(),
            component,
            transport: transport.to_owned(),
            priority,
            address: address.to_owned(),
            port,
            kind,
            related_address: None,
            related_port: None,
            extensions: Vec::new(),
        };
        // `raddr` and `rport` have their place right after the type; elsewhere they are
        // extensions like any other, so that the writer's order reads back the same.
        while let Some(name) = fields.token() {
            let value = fields.token()?;
            let in_place = candidate.extensions.is_empty() && candidate.related_port.is_none();
            if name == "raddr" && in_place && candidate.related_address.is_none() {
                candidate.related_address = Some(value.to_owned());
            } else if name == "rport" && in_place {
                candidate.related_port = Some(parse_number(value)?);
            } else {
                candidate
                    .extensions
                    .push((name.to_owned(), value.to_owned()));
            }
        }
        Some(candidate)
    }

    /// The value of an extension, e.g. `generation` or `tcptype`.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The attribute value, without the `candidate:` prefix.
impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.address,
            self.port,
            self.kind.as_str()
        )?;
        if let Some(address) = &self.related_address {
            write!(f, " raddr {address}")?;
        }
        if let Some(port) = self.related_port {
            write!(f, " rport {port}")?;
        }
        for (name, value) in &self.extensions {
            write!(f, " {name} {value}")?;
        }
        Ok(())
    }
}

/// `a=group`: media sections grouped by their mids, e.g. `BUNDLE 0 1 2` (RFC 5888, RFC 8843).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Group {
    /// The semantics: `BUNDLE`, `LS`, `FID`, ….
    pub semantics: String,
    /// The mids of the grouped sections, in order; for BUNDLE the first is the tagged one.
    pub mids: Vec<String>,
}

impl Group {
    pub(super) fn parse(value: &str) -> Result<Self, Invalid> {
        let mut fields = Fields::new(value);
        let semantics = need(fields.token().filter(|s| is_token(s)))?;
        let mut mids = Vec::new();
        while let Some(mid) = fields.token() {
            if !is_token(mid) {
                return Err(Invalid::Value);
            }
            mids.push(mid.to_owned());
        }
        Ok(Self {
            semantics: semantics.to_owned(),
            mids,
        })
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.semantics)?;
        if !self.mids.is_empty() {
            f.write_str(" ")?;
            write_joined(f, &self.mids, " ")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_reads_related_address_and_extensions() {
        let text = "candidate:842163049 1 udp 1677729535 203.0.113.9 61765 typ srflx \
                    raddr 10.0.0.4 rport 61765 generation 0 network-cost 999";
        let candidate = Candidate::parse(text).expect("valid candidate");
        assert_eq!(candidate.kind, CandidateType::ServerReflexive);
        assert_eq!(candidate.related_address.as_deref(), Some("10.0.0.4"));
        assert_eq!(candidate.related_port, Some(61765));
        assert_eq!(candidate.extension("network-cost"), Some("999"));
        assert_eq!(format!("candidate:{candidate}"), text);
    }

    #[test]
    fn candidate_keeps_misplaced_related_fields_as_extensions() {
        for text in [
            "1 1 udp 5 h.local 9 typ host generation 0 raddr 1.2.3.4",
            "1 1 udp 5 h.local 9 typ host rport 5 raddr 1.2.3.4",
        ] {
            let candidate = Candidate::parse(text).expect("valid candidate");
            assert_eq!(candidate.to_string(), text);
            assert_eq!(Candidate::parse(&candidate.to_string()), Ok(candidate));
        }
    }

    #[test]
    fn candidate_rejects_bad_fields() {
        for text in [
            "",
            "1 0 udp 5 h 9 typ host",
            "1 257 udp 5 h 9 typ host",
            "1 1 udp 4294967296 h 9 typ host",
            "1 1 udp 5 h 65536 typ host",
            "1 1 udp 5 h 9 type host",
            "1 1 udp 5 h 9 typ nat",
            "1 1 udp 5 h 9 typ host generation",
            "1 1 udp 5 h 9 typ srflx raddr 1.2.3.4 rport x",
            "f-o 1 udp 5 h 9 typ host",
        ] {
            assert_eq!(Candidate::parse(text), Err(InvalidCandidate), "{text:?}");
        }
    }

    #[test]
    fn fingerprint_reads_either_case_and_writes_upper() {
        let hex: Vec<String> = (0u8..20).map(|b| format!("{b:02x}")).collect();
        let fingerprint =
            Fingerprint::parse(&format!("SHA-1 {}", hex.join(":"))).expect("valid fingerprint");
        assert_eq!(fingerprint.hash_function, HashFunction::Sha1);
        assert_eq!(fingerprint.value, (0u8..20).collect::<Vec<_>>());
        assert!(fingerprint.to_string().starts_with("sha-1 00:01:02:"));
        assert!(fingerprint.to_string().ends_with(":0F:10:11:12:13"));
    }

    #[test]
    fn fingerprint_rejects_wrong_lengths_and_hashes() {
        for value in [
            "sha-256 AB:CD",
            "md5 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
            "sha-1 +0:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13",
            "sha-1 000:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12",
            "sha-1",
        ] {
            assert_eq!(
                Fingerprint::parse(value),
                Err(Invalid::Fingerprint),
                "{value}"
            );
        }
    }

    #[test]
    fn ice_credentials_have_rfc_lengths() {
        assert!(is_ice_ufrag("a+/9"));
        assert!(!is_ice_ufrag("abc"));
        assert!(!is_ice_ufrag("ab-c"));
        assert!(is_ice_pwd("abcdefghijklmnopqrstuv"));
        assert!(!is_ice_pwd("abcdefghijklmnopqrstu"));
    }
}
