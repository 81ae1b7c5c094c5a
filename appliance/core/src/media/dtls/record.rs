//! A first look at each datagram before rtc-dtls parses it: the record framing, the kinds of
//! record DTLS-SRTP uses, and the counts the endpoint's limits need. Whatever this refuses never
//! reaches the library, so a malformed record cannot make it send an alert or end a handshake.

use std::ops::Range;

/// Length of a DTLS record header: type, version, epoch, sequence number, length.
pub(super) const RECORD_HEADER_LEN: usize = 13;
/// Length of a DTLS handshake message header: type, length, sequence, fragment offset and length.
const HANDSHAKE_HEADER_LEN: usize = 12;
/// Explicit nonce and tag of an AES-GCM record (RFC 5288), the only record cipher we negotiate:
/// an encrypted record shorter than this cannot be genuine.
const GCM_RECORD_OVERHEAD: usize = 8 + 16;

const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
/// Handshake messages sent in the clear in a DTLS 1.2 handshake with certificates: ClientHello,
/// ServerHello, HelloVerifyRequest, Certificate, ServerKeyExchange, CertificateRequest,
/// ServerHelloDone, CertificateVerify, ClientKeyExchange. (Finished is always encrypted.)
const PLAINTEXT_HANDSHAKE_TYPES: [u8; 9] = [1, 2, 3, 11, 12, 13, 14, 15, 16];

/// The `use_srtp` extension (RFC 5764 §4.1.1).
const EXTENSION_USE_SRTP: u16 = 14;
/// The `supported_groups` extension, once `elliptic_curves` (RFC 8422 §5.1.1).
const EXTENSION_SUPPORTED_GROUPS: u16 = 10;

/// One record of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    /// Where the record (header included) lies in the datagram.
    pub(super) span: Range<usize>,
    pub(super) content_type: u8,
    pub(super) epoch: u16,
}

impl Record {
    /// An encrypted handshake record (Finished, or an attempt to renegotiate).
    fn is_encrypted_handshake(&self) -> bool {
        self.epoch > 0 && self.content_type == HANDSHAKE
    }

    fn is_application_data(&self) -> bool {
        self.content_type == APPLICATION_DATA
    }
}

/// What a well-formed datagram holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Scan {
    pub(super) records: Vec<Record>,
    /// Handshake message fragments sent in the clear (epoch 0).
    pub(super) handshake_fragments: u32,
    /// ClientHello fragments that start a message (offset zero): one per ClientHello sent.
    pub(super) client_hellos: u32,
    /// Whether any ClientHello fragment is present, at any offset.
    pub(super) has_client_hello: bool,
    /// Whether a ServerHello (or a fragment of one) is present.
    pub(super) has_server_hello: bool,
    /// Records under epoch 1, the negotiated keys.
    pub(super) encrypted: u32,
    /// Alert records, clear or encrypted.
    pub(super) alerts: u32,
}

impl Scan {
    /// Whether every record is a ClientHello fragment: the only thing a new remote may send.
    pub(super) fn is_client_hello_only(&self) -> bool {
        self.has_client_hello
            && self
                .records
                .iter()
                .all(|record| record.epoch == 0 && record.content_type == HANDSHAKE)
    }

    /// The records an established association still takes: everything except encrypted
    /// handshake records and application data.
    pub(super) fn after_handshake(&self) -> AfterHandshake {
        let mut verdict = AfterHandshake::default();
        for record in &self.records {
            if record.is_encrypted_handshake() {
                verdict.handshake = true;
            } else if record.is_application_data() {
                verdict.application_data = true;
            } else {
                verdict.keep.push(record.span.clone());
            }
        }
        verdict
    }
}

/// Which records of a datagram an established association takes.
#[derive(Debug, Default)]
pub(super) struct AfterHandshake {
    pub(super) keep: Vec<Range<usize>>,
    /// Encrypted handshake records were removed.
    pub(super) handshake: bool,
    /// Application data records were removed.
    pub(super) application_data: bool,
}

/// Reads a datagram as DTLS 1.2 records. `None` if any record is malformed or of a kind that
/// DTLS-SRTP never sends: an unknown content type or version, an epoch beyond 1, plaintext
/// application data, a ChangeCipherSpec or alert of the wrong size, an encrypted record too
/// short for AES-GCM, or a handshake fragment that does not fit its record or message.
pub(super) fn scan(datagram: &[u8]) -> Option<Scan> {
    let mut scan = Scan::default();
    let mut rest = datagram;
    let mut offset = 0;
    while !rest.is_empty() {
        let mut header = Reader(rest);
        let content_type = header.u8()?;
        let version = header.u16()?;
        let epoch = header.u16()?;
        let _sequence_number = header.bytes(6)?;
        let length = usize::from(header.u16()?);
        let body = header.bytes(length)?;
        // DTLS 1.0 is the record version of a first ClientHello (RFC 6347 §4.1).
        if !matches!(version, 0xfefd | 0xfeff) || body.is_empty() || epoch > 1 {
            return None;
        }
        match (epoch, content_type) {
            (0, CHANGE_CIPHER_SPEC) if body == [1] => {}
            (0, ALERT) if body.len() == 2 => scan.alerts += 1,
            (0, HANDSHAKE) => scan_handshake(body, &mut scan)?,
            (1, ALERT | HANDSHAKE | APPLICATION_DATA) if body.len() >= GCM_RECORD_OVERHEAD => {
                scan.encrypted += 1;
                if content_type == ALERT {
                    scan.alerts += 1;
                }
            }
            _ => return None,
        }
        let record_len = RECORD_HEADER_LEN + length;
        scan.records.push(Record {
            span: offset..offset + record_len,
            content_type,
            epoch,
        });
        offset += record_len;
        rest = header.0;
    }
    (!scan.records.is_empty()).then_some(scan)
}

/// Reads the handshake fragments of one plaintext record.
///
/// A fragment must lie inside its message, and one that does not complete its message must end
/// its record: rtc-dtls reads a fragment up to its message's length, not the fragment's.
/// Empty fragments are refused (a message of length zero has one whole, empty fragment).
fn scan_handshake(mut body: &[u8], scan: &mut Scan) -> Option<()> {
    while !body.is_empty() {
        let mut reader = Reader(body);
        let message_type = reader.u8()?;
        let length = reader.u24()?;
        let _message_sequence = reader.u16()?;
        let fragment_offset = reader.u24()?;
        let fragment_length = reader.u24()?;
        let fragment = reader.bytes(usize::try_from(fragment_length).ok()?)?;
        let whole = fragment_offset == 0 && fragment_length == length;
        let inside = fragment_offset
            .checked_add(fragment_length)
            .is_some_and(|end| end <= length);
        if !PLAINTEXT_HANDSHAKE_TYPES.contains(&message_type)
            || !inside
            || (fragment_length == 0 && length != 0)
            || (!whole && !reader.0.is_empty())
        {
            return None;
        }
        scan.handshake_fragments += 1;
        scan.has_server_hello |= message_type == SERVER_HELLO;
        if message_type == CLIENT_HELLO {
            scan.has_client_hello = true;
            if fragment_offset == 0 {
                scan.client_hellos += 1;
            }
        }
        body = &body[HANDSHAKE_HEADER_LEN + fragment.len()..];
    }
    Some(())
}

/// The SRTP protection profiles a ClientHello offers, in its order, if the datagram holds a
/// whole ClientHello with a `use_srtp` extension. `None` if the ClientHello is fragmented,
/// malformed or offers no `use_srtp`: then the library's own parse decides.
pub(super) fn offered_srtp_profiles(datagram: &[u8], scan: &Scan) -> Option<Vec<u16>> {
    let mut data = Reader(client_hello_extension(datagram, scan, EXTENSION_USE_SRTP)?);
    let profiles_len = data.u16()?;
    u16_list(data.bytes(usize::from(profiles_len))?)
}

/// The named groups (ECDHE curves) a ClientHello offers, in its order, if the datagram holds a
/// whole ClientHello with a `supported_groups` extension. `None` as for
/// [`offered_srtp_profiles`].
pub(super) fn offered_groups(datagram: &[u8], scan: &Scan) -> Option<Vec<u16>> {
    let mut data = Reader(client_hello_extension(
        datagram,
        scan,
        EXTENSION_SUPPORTED_GROUPS,
    )?);
    let groups_len = data.u16()?;
    u16_list(data.bytes(usize::from(groups_len))?)
}

/// The body of the extension `wanted` of the datagram's first handshake record, if that holds a
/// whole, well-formed ClientHello with that extension.
fn client_hello_extension<'a>(datagram: &'a [u8], scan: &Scan, wanted: u16) -> Option<&'a [u8]> {
    let record = scan
        .records
        .iter()
        .find(|record| record.epoch == 0 && record.content_type == HANDSHAKE)?;
    let mut reader = Reader(datagram.get(record.span.clone())?);
    reader.bytes(RECORD_HEADER_LEN)?;
    let message_type = reader.u8()?;
    let length = reader.u24()?;
    let _message_sequence = reader.u16()?;
    let fragment_offset = reader.u24()?;
    let fragment_length = reader.u24()?;
    if message_type != CLIENT_HELLO || fragment_offset != 0 || fragment_length != length {
        return None;
    }
    let mut hello = Reader(reader.bytes(usize::try_from(length).ok()?)?);
    let _client_version = hello.u16()?;
    let _random = hello.bytes(32)?;
    let session_id_len = hello.u8()?;
    hello.bytes(usize::from(session_id_len))?;
    let cookie_len = hello.u8()?;
    hello.bytes(usize::from(cookie_len))?;
    let suites_len = hello.u16()?;
    hello.bytes(usize::from(suites_len))?;
    let compression_len = hello.u8()?;
    hello.bytes(usize::from(compression_len))?;
    let extensions_len = hello.u16()?;
    let mut extensions = Reader(hello.bytes(usize::from(extensions_len))?);
    while !extensions.0.is_empty() {
        let extension_type = extensions.u16()?;
        let extension_len = extensions.u16()?;
        let data = extensions.bytes(usize::from(extension_len))?;
        if extension_type == wanted {
            return Some(data);
        }
    }
    None
}

/// A list of 16-bit codes; `None` if its length is odd.
fn u16_list(bytes: &[u8]) -> Option<Vec<u16>> {
    let mut reader = Reader(bytes);
    let mut list = Vec::with_capacity(bytes.len() / 2);
    while !reader.0.is_empty() {
        list.push(reader.u16()?);
    }
    Some(list)
}

/// A cursor over bytes whose reads fail rather than panic when the bytes run out.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.0.len() {
            return None;
        }
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(taken)
    }

    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u24(&mut self) -> Option<u32> {
        self.bytes(3)
            .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }
}
