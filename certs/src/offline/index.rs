//! The offline CA's record of what it issued and revoked, and the CRL number: `index.json`.
//!
//! ```json
//! {
//!   "format": "kammer-offline-ca/1",
//!   "crl_number": 2,
//!   "certificates": [
//!     {
//!       "serial": "5c1f…(32 hex digits)",
//!       "subject": "CN=kammer.example.org",
//!       "names": ["kammer.example.org", "10.20.0.5"],
//!       "not_before": "2026-05-04T09:55:00Z",
//!       "not_after": "2027-06-05T10:00:00Z",
//!       "status": "revoked",
//!       "revoked_at": "2026-07-01T08:00:00Z",
//!       "reason": "key-compromise"
//!     }
//!   ]
//! }
//! ```
//!
//! `crl_number` is the number of the last CRL written (0: none yet). `status` is `valid` or
//! `revoked`; `revoked_at` and `reason` are present exactly when it is `revoked`. Certificates
//! are listed in the order they were issued. The file is replaced atomically on every change.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::names::SubjectName;

/// The value of the `format` field.
const FORMAT: &str = "kammer-offline-ca/1";

/// A certificate's serial number: 16 bytes, the first in `0x40..=0x7f` (126 random bits, a
/// positive DER integer of exactly 16 bytes).
///
/// Written as 32 lower-case hex digits; read case-insensitively, with or without colons (as
/// `openssl x509 -serial` and `-text` print it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial([u8; 16]);

impl Serial {
    /// A fresh random serial.
    pub(crate) fn random(
        rng: &dyn ring::rand::SecureRandom,
    ) -> Result<Self, ring::error::Unspecified> {
        let mut bytes = [0; 16];
        rng.fill(&mut bytes)?;
        bytes[0] = (bytes[0] & 0x3f) | 0x40;
        Ok(Self(bytes))
    }

    /// The serial's bytes, big-endian.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

/// A string that is not a serial number of this CA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a serial number is 32 hexadecimal digits (colons allowed), not {0:?}")]
pub struct InvalidSerial(String);

impl FromStr for Serial {
    type Err = InvalidSerial;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidSerial(s.chars().take(80).collect());
        let digits: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
        if digits.len() != 32 {
            return Err(invalid());
        }
        let mut bytes = [0; 16];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| invalid())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
        }
        Ok(Self(bytes))
    }
}

/// Why a certificate was revoked (RFC 5280, section 5.3.1; only the reasons that apply to a
/// server certificate, and no "certificate hold": a revocation is final).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// No reason given (the CRL entry then carries no reason code).
    Unspecified,
    /// The private key was, or may have been, disclosed.
    KeyCompromise,
    /// The subject's name or affiliation changed.
    AffiliationChanged,
    /// A new certificate replaces this one.
    Superseded,
    /// The appliance was decommissioned.
    CessationOfOperation,
    /// The subject is no longer allowed to hold the certificate.
    PrivilegeWithdrawn,
}

impl RevocationReason {
    /// Every reason, in the order of their RFC 5280 codes.
    pub const ALL: [Self; 6] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
        Self::PrivilegeWithdrawn,
    ];

    /// The name in `index.json` and on the command line, e.g. `key-compromise`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "key-compromise",
            Self::AffiliationChanged => "affiliation-changed",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessation-of-operation",
            Self::PrivilegeWithdrawn => "privilege-withdrawn",
        }
    }

    /// The CRL entry's reason code; none for [`Unspecified`](Self::Unspecified), as RFC 5280
    /// asks.
    pub(crate) fn crl_reason(self) -> Option<rcgen::RevocationReason> {
        match self {
            Self::Unspecified => None,
            Self::KeyCompromise => Some(rcgen::RevocationReason::KeyCompromise),
            Self::AffiliationChanged => Some(rcgen::RevocationReason::AffiliationChanged),
            Self::Superseded => Some(rcgen::RevocationReason::Superseded),
            Self::CessationOfOperation => Some(rcgen::RevocationReason::CessationOfOperation),
            Self::PrivilegeWithdrawn => Some(rcgen::RevocationReason::PrivilegeWithdrawn),
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that names no [`RevocationReason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown revocation reason; use one of unspecified, key-compromise, affiliation-changed, \
     superseded, cessation-of-operation, privilege-withdrawn"
)]
pub struct UnknownReason;

impl FromStr for RevocationReason {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.name() == s)
            .ok_or(UnknownReason)
    }
}

/// Whether a certificate is still valid as far as this CA is concerned (expiry aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateStatus {
    /// Not revoked.
    Valid,
    /// Revoked.
    Revoked {
        /// When the CA recorded the revocation.
        at: OffsetDateTime,
        /// Why.
        reason: RevocationReason,
    },
}

/// One certificate the CA issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// Its serial number; its PEM is `issued/<serial>.pem`.
    pub serial: Serial,
    /// Its subject, e.g. `CN=kammer.example.org`.
    pub subject: String,
    /// Its subject alternative names.
    pub names: Vec<SubjectName>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Revoked or not.
    pub status: CertificateStatus,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) crl_number: u64,
    pub(crate) certificates: Vec<IssuedCertificate>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexFile {
    format: String,
    crl_number: u64,
    certificates: Vec<EntryFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    serial: String,
    subject: String,
    names: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    status: String,
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    revoked_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl Index {
    /// Reads `index.json`; the error says what is wrong, for the operator.
    pub(crate) fn from_json(json: &str) -> Result<Self, String> {
        let file: IndexFile = serde_json::from_str(json).map_err(|error| error.to_string())?;
        if file.format != FORMAT {
            return Err(format!(
                "unknown format {:?} (expected {FORMAT:?})",
                file.format
            ));
        }
        let mut certificates = Vec::with_capacity(file.certificates.len());
        for entry in file.certificates {
            let serial: Serial = entry
                .serial
                .parse()
                .map_err(|e: InvalidSerial| e.to_string())?;
            let names = entry
                .names
                .iter()
                .map(|name| name.parse::<SubjectName>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|error| format!("certificate {serial}: {error}"))?;
            let status = match (entry.status.as_str(), entry.revoked_at, entry.reason) {
                ("valid", None, None) => CertificateStatus::Valid,
                ("revoked", Some(at), Some(reason)) => CertificateStatus::Revoked {
                    at,
                    reason: reason
                        .parse()
                        .map_err(|error| format!("certificate {serial}: {error}"))?,
                },
                _ => {
                    return Err(format!(
                        "certificate {serial}: status must be \"valid\", or \"revoked\" with \
                         revoked_at and reason"
                    ));
                }
            };
            if certificates
                .iter()
                .any(|known: &IssuedCertificate| known.serial == serial)
            {
                return Err(format!("serial {serial} is listed twice"));
            }
            certificates.push(IssuedCertificate {
                serial,
                subject: entry.subject,
                names,
                not_before: entry.not_before,
                not_after: entry.not_after,
                status,
            });
        }
        Ok(Self {
            crl_number: file.crl_number,
            certificates,
        })
    }

    pub(crate) fn to_json(&self) -> String {
        let file = IndexFile {
            format: FORMAT.to_owned(),
            crl_number: self.crl_number,
            certificates: self
                .certificates
                .iter()
                .map(|certificate| {
                    let (status, revoked_at, reason) = match certificate.status {
                        CertificateStatus::Valid => ("valid", None, None),
                        CertificateStatus::Revoked { at, reason } => {
                            ("revoked", Some(at), Some(reason.name().to_owned()))
                        }
                    };
                    EntryFile {
                        serial: certificate.serial.to_string(),
                        subject: certificate.subject.clone(),
                        names: certificate.names.iter().map(ToString::to_string).collect(),
                        not_before: certificate.not_before,
                        not_after: certificate.not_after,
                        status: status.to_owned(),
                        revoked_at,
                        reason,
                    }
                })
                .collect(),
        };
        let mut json = serde_json::to_string_pretty(&file)
            .expect("the index holds only strings, numbers and valid dates");
        json.push('\n');
        json
    }

    pub(crate) fn find_mut(&mut self, serial: &Serial) -> Option<&mut IssuedCertificate> {
        self.certificates
            .iter_mut()
            .find(|certificate| certificate.serial == *serial)
    }

    pub(crate) fn contains(&self, serial: &Serial) -> bool {
        self.certificates
            .iter()
            .any(|certificate| certificate.serial == *serial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_print_and_parse() {
        let rng = ring::rand::SystemRandom::new();
        let serial = Serial::random(&rng).expect("random");
        assert!((0x40..=0x7f).contains(&serial.as_bytes()[0]));
        let text = serial.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<Serial>(), Ok(serial));
        let colons = serial
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(colons.parse::<Serial>(), Ok(serial));
        assert!("00".parse::<Serial>().is_err());
        assert!("zz".repeat(16).parse::<Serial>().is_err());
        assert!("é".repeat(16).parse::<Serial>().is_err());
    }

    #[test]
    fn reasons_round_trip() {
        for reason in RevocationReason::ALL {
            assert_eq!(reason.name().parse(), Ok(reason));
        }
        assert_eq!("hold".parse::<RevocationReason>(), Err(UnknownReason));
    }

    #[test]
    fn the_index_round_trips_and_refuses_inconsistency() {
        let at = OffsetDateTime::from_unix_timestamp(1_780_000_000).expect("a valid time");
        let index = Index {
            crl_number: 3,
            certificates: vec![
                IssuedCertificate {
                    serial: "40".repeat(16).parse().expect("serial"),
                    subject: "CN=a.test".into(),
                    names: vec!["a.test".parse().expect("name")],
                    not_before: at,
                    not_after: at,
                    status: CertificateStatus::Valid,
                },
                IssuedCertificate {
                    serial: "41".repeat(16).parse().expect("serial"),
                    subject: "CN=b.test".into(),
                    names: vec!["10.0.0.1".parse().expect("name")],
                    not_before: at,
                    not_after: at,
                    status: CertificateStatus::Revoked {
                        at,
                        reason: RevocationReason::Superseded,
                    },
                },
            ],
        };
        let json = index.to_json();
        assert_eq!(Index::from_json(&json), Ok(index));

        let half_revoked = json.replacen("\"status\": \"revoked\"", "\"status\": \"valid\"", 1);
        assert!(Index::from_json(&half_revoked).is_err());
        let twice = json.replace(&"41".repeat(16), &"40".repeat(16));
        assert!(Index::from_json(&twice).is_err());
        assert!(Index::from_json(&json.replace(FORMAT, "other/1")).is_err());
    }
}
