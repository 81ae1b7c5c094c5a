//! What goes into the CA certificate and the server certificates, and what the CA needs to
//! read back from its own certificate.

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyIdMethod, KeyUsagePurpose, NameConstraints,
    SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::ParsedExtension;

use super::{BACKDATE, CaError, CaOptions, Serial};
use crate::names::{self, Constraints, PermittedName, SubjectName};

/// The request's common name if it is one of `names`, else the first name that fits into a
/// common name; none if no name fits (the subject is then empty and the subjectAltName
/// extension critical).
pub(super) fn common_name(requested: Option<&str>, names: &[SubjectName]) -> Option<String> {
    let fits = |name: &str| names::check_common_name(name).is_ok();
    requested
        .filter(|cn| fits(cn))
        .and_then(|cn| {
            names
                .iter()
                .map(ToString::to_string)
                .find(|name| name.eq_ignore_ascii_case(cn))
        })
        .or_else(|| {
            names
                .iter()
                .map(ToString::to_string)
                .find(|name| fits(name))
        })
}

pub(super) fn ca_params(
    options: &CaOptions,
    now: OffsetDateTime,
    serial: Serial,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    if let Some(organization) = &options.organization {
        name.push(DnType::OrganizationName, organization.as_str());
    }
    name.push(DnType::CommonName, options.common_name.as_str());
    params.distinguished_name = name;
    params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.key_identifier_method = KeyIdMethod::Sha256;
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(i64::from(options.validity_days));
    if !options.name_constraints.is_empty() {
        let mut permitted_subtrees = Vec::new();
        for permitted in &options.name_constraints {
            permitted_subtrees.push(match permitted {
                PermittedName::Dns(name) => GeneralSubtree::DnsName(name.as_str().to_owned()),
                PermittedName::Ip(net) => GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                    net.network(),
                    net.prefix_len(),
                )),
            });
        }
        let any_ip = options
            .name_constraints
            .iter()
            .any(|permitted| matches!(permitted, PermittedName::Ip(_)));
        let excluded_subtrees = if any_ip {
            Vec::new()
        } else {
            vec![
                GeneralSubtree::IpAddress(CidrSubnet::V4([0; 4], [0; 4])),
                GeneralSubtree::IpAddress(CidrSubnet::V6([0; 16], [0; 16])),
            ]
        };
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees,
            excluded_subtrees,
        });
    }
    Ok(params)
}

pub(super) fn server_params(
    serial: Serial,
    common_name: Option<&str>,
    names: &[SubjectName],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    if let Some(common_name) = common_name {
        subject.push(DnType::CommonName, common_name);
    }
    params.distinguished_name = subject;
    params.serial_number = Some(SerialNumber::from_slice(serial.as_bytes()));
    for name in names {
        params.subject_alt_names.push(match name {
            SubjectName::Dns(dns) => SanType::DnsName(dns.as_str().try_into()?),
            SubjectName::Ip(address) => SanType::IpAddress(*address),
        });
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method = KeyIdMethod::Sha256;
    params.not_before = not_before;
    params.not_after = not_after;
    Ok(params)
}

/// What `open` needs from `ca.pem`.
pub(super) struct CaInfo {
    pub(super) der: Vec<u8>,
    pub(super) public_point: Vec<u8>,
    pub(super) key_id: Vec<u8>,
    pub(super) not_after: OffsetDateTime,
    pub(super) constraints: Constraints,
}

impl CaInfo {
    pub(super) fn parse(pem: &str) -> Result<Self, &'static str> {
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|_| "not a PEM certificate")?;
        if block.label != "CERTIFICATE" {
            return Err("not a PEM certificate");
        }
        let (_, certificate) = x509_parser::parse_x509_certificate(&block.contents)
            .map_err(|_| "the certificate does not parse")?;
        let is_ca = certificate
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|constraints| constraints.value.ca);
        if !is_ca {
            return Err("not a CA certificate");
        }
        let mut key_id = None;
        let mut constraints = Constraints::default();
        for extension in certificate.extensions() {
            match extension.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => key_id = Some(id.0.to_vec()),
                ParsedExtension::NameConstraints(parsed) => {
                    constraints = Constraints::from_x509(parsed);
                }
                _ => {}
            }
        }
        let public_point = certificate.public_key().subject_public_key.data.to_vec();
        let not_after = certificate.validity().not_after.to_datetime();
        Ok(Self {
            public_point,
            key_id: key_id.ok_or("the CA certificate has no subjectKeyIdentifier")?,
            not_after,
            constraints,
            der: block.contents,
        })
    }
}
