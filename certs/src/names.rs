//! The names a server certificate can carry (DNS names and IP addresses), the names a CA may be
//! constrained to, and the check of the one against the other (RFC 5280, section 4.2.1.10).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use x509_parser::extensions::{GeneralName, NameConstraints};

/// At most this many names go into one certificate.
pub const MAX_NAMES: usize = 100;
/// The longest common name X.509 allows (`ub-common-name`).
const MAX_COMMON_NAME: usize = 64;

/// A name or name constraint that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not a host name of letters, digits and hyphens (wildcards are not issued).
    #[error("{name:?} is not a usable DNS name: {reason}")]
    InvalidDnsName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The unspecified address (`0.0.0.0`, `::`) names no host.
    #[error("the unspecified address {0} cannot be certified")]
    UnspecifiedAddress(IpAddr),
    /// Not an `address/prefix` network.
    #[error("{0:?} is not an IP network (expected address/prefix, e.g. 10.20.0.0/16)")]
    InvalidNetwork(String),
    /// An empty or over-long common name, or one with control characters.
    #[error("a common name must be 1 to 64 characters long, without control characters")]
    InvalidCommonName,
    /// No names at all.
    #[error("no DNS name or IP address to certify")]
    NoNames,
    /// More than [`MAX_NAMES`].
    #[error("more than {MAX_NAMES} names")]
    TooManyNames,
}

/// A host name: ASCII letters, digits and hyphens in dot-separated labels, stored in lower case.
///
/// Refused: wildcards, underscores, a trailing dot, labels longer than 63 characters, names
/// longer than 253, and a last label of digits only (which would read as an IPv4 address).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsName(String);

impl DnsName {
    /// Checks and lower-cases `name`.
    pub fn new(name: &str) -> Result<Self, NameError> {
        let invalid = |reason| NameError::InvalidDnsName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() || name.len() > 253 {
            return Err(invalid("a name has 1 to 253 characters"));
        }
        if name.contains('*') {
            return Err(invalid("wildcard names are not issued"));
        }
        if name.ends_with('.') {
            return Err(invalid("leave out the trailing dot"));
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(invalid("each label has 1 to 63 characters"));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(invalid(
                    "only letters, digits, hyphens and dots are allowed",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a label cannot begin or end with a hyphen"));
            }
        }
        if name
            .rsplit('.')
            .next()
            .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(
                "the last label is a number; give an IP address as an IP address",
            ));
        }
        Ok(Self(name.to_ascii_lowercase()))
    }

    /// The name, lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this name is `base` or a name below it.
    fn is_within(&self, base: &str) -> bool {
        let base = base.to_ascii_lowercase();
        if base.is_empty() {
            return true;
        }
        if base.starts_with('.') {
            return self.0.ends_with(&base);
        }
        self.0 == base
            || self
                .0
                .strip_suffix(&base)
                .is_some_and(|head| head.ends_with('.'))
    }
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DnsName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A name a server certificate is issued for: a subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectName {
    /// A DNS name (`dNSName`).
    Dns(DnsName),
    /// An IP address (`iPAddress`); never the unspecified address.
    Ip(IpAddr),
}

impl SubjectName {
    /// An IP address; the unspecified address is refused.
    pub fn ip(address: IpAddr) -> Result<Self, NameError> {
        if address.is_unspecified() {
            return Err(NameError::UnspecifiedAddress(address));
        }
        Ok(Self::Ip(address))
    }
}

impl FromStr for SubjectName {
    type Err = NameError;

    /// An IP address if `s` reads as one, else a DNS name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<IpAddr>() {
            Ok(address) => Self::ip(address),
            Err(_) => DnsName::new(s).map(Self::Dns),
        }
    }
}

impl fmt::Display for SubjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => name.fmt(f),
            Self::Ip(address) => address.fmt(f),
        }
    }
}

/// Sorts and deduplicates names and checks their number.
pub(crate) fn normalize(mut names: Vec<SubjectName>) -> Result<Vec<SubjectName>, NameError> {
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(NameError::NoNames);
    }
    if names.len() > MAX_NAMES {
        return Err(NameError::TooManyNames);
    }
    Ok(names)
}

/// Checks a common name: 1 to 64 characters, none of them a control character.
pub(crate) fn check_common_name(name: &str) -> Result<(), NameError> {
    let length = name.chars().count();
    if length == 0 || length > MAX_COMMON_NAME || name.chars().any(char::is_control) {
        return Err(NameError::InvalidCommonName);
    }
    Ok(())
}

/// A name a CA may be constrained to (a permitted subtree of its name constraints).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PermittedName {
    /// This DNS name and every name below it (`example.org` permits `example.org` and
    /// `kammer.example.org`).
    Dns(DnsName),
    /// The addresses of this network (host bits are ignored).
    Ip(IpNet),
}

impl FromStr for PermittedName {
    type Err = NameError;

    /// `address/prefix` is a network, a bare address a one-address network, anything else a
    /// DNS name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains('/') {
            return s
                .parse::<IpNet>()
                .map(|net| Self::Ip(net.trunc()))
                .map_err(|_| NameError::InvalidNetwork(s.to_owned()));
        }
        match s.parse::<IpAddr>() {
            Ok(address) => Ok(Self::Ip(IpNet::from(address))),
            Err(_) => DnsName::new(s).map(Self::Dns),
        }
    }
}

impl fmt::Display for PermittedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => name.fmt(f),
            Self::Ip(net) => net.fmt(f),
        }
    }
}

/// One subtree of a certificate's name constraints, as far as server names are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subtree {
    Dns(String),
    Ip { network: Vec<u8>, mask: Vec<u8> },
}

impl Subtree {
    fn from_general_name(name: &GeneralName<'_>) -> Option<Self> {
        match name {
            GeneralName::DNSName(base) => Some(Self::Dns((*base).to_owned())),
            GeneralName::IPAddress(bytes) if bytes.len() == 8 || bytes.len() == 32 => {
                let (network, mask) = bytes.split_at(bytes.len() / 2);
                Some(Self::Ip {
                    network: network.to_vec(),
                    mask: mask.to_vec(),
                })
            }
            // Other name forms do not constrain DNS names or IP addresses.
            _ => None,
        }
    }

    /// Whether the subtree is of `name`'s form (the iPAddress form covers IPv4 and IPv6).
    fn same_form(&self, name: &SubjectName) -> bool {
        matches!(
            (self, name),
            (Self::Dns(_), SubjectName::Dns(_)) | (Self::Ip { .. }, SubjectName::Ip(_))
        )
    }

    fn contains(&self, name: &SubjectName) -> bool {
        match (self, name) {
            (Self::Dns(base), SubjectName::Dns(name)) => name.is_within(base),
            (Self::Ip { network, mask }, SubjectName::Ip(address)) => {
                let octets = match address {
                    IpAddr::V4(v4) => v4.octets().to_vec(),
                    IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                octets.len() == network.len()
                    && octets
                        .iter()
                        .zip(network)
                        .zip(mask)
                        .all(|((a, n), m)| a & m == n & m)
            }
            _ => false,
        }
    }
}

/// A CA certificate's name constraints, read back from the certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Constraints {
    permitted: Vec<Subtree>,
    excluded: Vec<Subtree>,
}

impl Constraints {
    pub(crate) fn from_x509(constraints: &NameConstraints<'_>) -> Self {
        let read = |subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| {
            subtrees
                .iter()
                .flatten()
                .filter_map(|subtree| Subtree::from_general_name(&subtree.base))
                .collect()
        };
        Self {
            permitted: read(&constraints.permitted_subtrees),
            excluded: read(&constraints.excluded_subtrees),
        }
    }

    /// Whether a certificate for `name` issued under these constraints is valid: no excluded
    /// subtree contains it, and if there are permitted subtrees of its form, one contains it.
    pub(crate) fn permits(&self, name: &SubjectName) -> bool {
        if self.excluded.iter().any(|subtree| subtree.contains(name)) {
            return false;
        }
        let mut of_its_form = self
            .permitted
            .iter()
            .filter(|subtree| subtree.same_form(name))
            .peekable();
        of_its_form.peek().is_none() || of_its_form.any(|subtree| subtree.contains(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> SubjectName {
        s.parse().expect("valid name")
    }

    #[test]
    fn dns_names_are_checked_and_lower_cased() {
        assert_eq!(name("Kammer.Example.ORG").to_string(), "kammer.example.org");
        assert_eq!(name("kammer").to_string(), "kammer");
        for bad in [
            "",
            "*.example.org",
            "example.org.",
            "a..b",
            "-a.b",
            "a-.b",
            "under_score.b",
            "10.0.0.256",
            "host.123",
            "bad\u{1b}[31m",
            &"a".repeat(64),
        ] {
            assert!(DnsName::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ip_addresses_are_parsed_and_unspecified_is_refused() {
        assert_eq!(name("10.0.0.5"), SubjectName::Ip([10, 0, 0, 5].into()));
        assert_eq!(
            name("::1"),
            SubjectName::Ip(std::net::Ipv6Addr::LOCALHOST.into())
        );
        assert!("0.0.0.0".parse::<SubjectName>().is_err());
        assert!("::".parse::<SubjectName>().is_err());
    }

    #[test]
    fn permitted_names_parse() {
        assert_eq!(
            "10.1.2.3/8".parse::<PermittedName>().expect("net"),
            PermittedName::Ip("10.0.0.0/8".parse().expect("net"))
        );
        assert_eq!(
            "10.1.2.3".parse::<PermittedName>().expect("host"),
            PermittedName::Ip("10.1.2.3/32".parse().expect("net"))
        );
        assert!("10.0.0.0/33".parse::<PermittedName>().is_err());
        assert!("*.example.org".parse::<PermittedName>().is_err());
    }

    #[test]
    fn constraints_follow_rfc_5280() {
        let constraints = Constraints {
            permitted: vec![
                Subtree::Dns("example.org".into()),
                Subtree::Ip {
                    network: vec![10, 0, 0, 0],
                    mask: vec![255, 0, 0, 0],
                },
            ],
            excluded: vec![Subtree::Ip {
                network: vec![0; 16],
                mask: vec![0; 16],
            }],
        };
        assert!(constraints.permits(&name("example.org")));
        assert!(constraints.permits(&name("kammer.example.org")));
        assert!(!constraints.permits(&name("badexample.org")));
        assert!(!constraints.permits(&name("example.org.evil")));
        assert!(constraints.permits(&name("10.200.0.1")));
        assert!(!constraints.permits(&name("192.168.0.1")));
        assert!(!constraints.permits(&name("fd00::1")));

        // No subtree of a form: that form is unconstrained.
        let only_dns = Constraints {
            permitted: vec![Subtree::Dns(".example.org".into())],
            excluded: Vec::new(),
        };
        assert!(only_dns.permits(&name("192.168.0.1")));
        assert!(only_dns.permits(&name("a.example.org")));
        assert!(!only_dns.permits(&name("example.org")));
        assert!(Constraints::default().permits(&name("anything.test")));
    }

    #[test]
    fn names_are_deduplicated_and_bounded() {
        let names = normalize(vec![name("b.test"), name("a.test"), name("b.test")]).expect("ok");
        assert_eq!(names, vec![name("a.test"), name("b.test")]);
        assert_eq!(normalize(Vec::new()), Err(NameError::NoNames));
        let many = (0..=MAX_NAMES)
            .map(|i| name(&format!("h{i}.test")))
            .collect();
        assert_eq!(normalize(many), Err(NameError::TooManyNames));
    }
}
