//! Loading, creating and using the storage key and its children, and their blob files.

use std::path::Path;

use tss_esapi::Context;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::handles::{KeyHandle, ObjectHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Digest, HashScheme, HashcheckTicket, Private, Public, PublicBuffer, Signature, SignatureScheme,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;

use super::{RoleKey, Slot, TpmObject, TpmState, templates};
use crate::Role;
use crate::der::{self, PublicKey};
use crate::error::KeyError;

impl TpmState {
    /// Flushes `transient` (newest first) and returns `result`, or the first flush error.
    pub(super) fn finish<T>(
        &mut self,
        transient: Vec<ObjectHandle>,
        result: Result<T, KeyError>,
    ) -> Result<T, KeyError> {
        let mut flush_error = None;
        for handle in transient.into_iter().rev() {
            if let Err(e) = self.ctx.flush_context(handle) {
                flush_error.get_or_insert(e);
            }
        }
        let value = result?;
        match flush_error {
            Some(e) => Err(KeyError::tpm("TPM2_FlushContext")(e)),
            None => Ok(value),
        }
    }

    /// Loads the storage key: from its saved context, or derived anew (and checked).
    pub(super) fn load_primary(
        &mut self,
        transient: &mut Vec<ObjectHandle>,
    ) -> Result<KeyHandle, KeyError> {
        if let Some(context) = self.primary.clone() {
            match self.ctx.context_load(context) {
                Ok(handle) => {
                    transient.push(handle);
                    return Ok(handle.into());
                }
                Err(_) => self.primary = None,
            }
        }
        let (handle, key) = create_primary(&mut self.ctx)?;
        transient.push(handle.into());
        if key != self.storage_key {
            return Err(KeyError::TpmChanged {
                dir: self.dir.clone(),
            });
        }
        self.primary = self.ctx.context_save(handle.into()).ok();
        Ok(handle)
    }

    fn object(&mut self, slot: Slot) -> Result<&mut TpmObject, KeyError> {
        match slot {
            Slot::Role(role) => self.roles[role.index()].as_mut().map(|key| &mut key.object),
            Slot::Sealed => self.sealed.as_mut(),
        }
        .ok_or(KeyError::Crypto("a TPM object is missing"))
    }

    /// Loads a child of the storage key: from its saved context, or from its blobs.
    pub(super) fn load(
        &mut self,
        slot: Slot,
        transient: &mut Vec<ObjectHandle>,
    ) -> Result<ObjectHandle, KeyError> {
        let object = self.object(slot)?;
        let (saved, public, private) = (
            object.saved.clone(),
            object.public.clone(),
            object.private.clone(),
        );
        if let Some(context) = saved {
            match self.ctx.context_load(context) {
                Ok(handle) => {
                    transient.push(handle);
                    return Ok(handle);
                }
                Err(_) => self.object(slot)?.saved = None,
            }
        }
        let mut parent = Vec::new();
        let loaded = self.load_primary(&mut parent).and_then(|primary| {
            self.ctx
                .execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.load(primary, private, public)
                })
                .map_err(KeyError::tpm("TPM2_Load"))
        });
        let handle: ObjectHandle = self.finish(parent, loaded)?.into();
        transient.push(handle);
        self.object(slot)?.saved = self.ctx.context_save(handle).ok();
        Ok(handle)
    }

    /// Creates a new signing key under the storage key.
    pub(super) fn create_signing_key(&mut self) -> Result<RoleKey, KeyError> {
        let template = templates::signing_key().map_err(KeyError::tpm("a key template"))?;
        let mut transient = Vec::new();
        let created = self.load_primary(&mut transient).and_then(|primary| {
            self.ctx
                .execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.create(primary, template, None, None, None, None)
                })
                .map_err(KeyError::tpm("TPM2_Create"))
        });
        let created = self.finish(transient, created)?;
        let key = ecc_public_key(&created.out_public)?;
        Ok(RoleKey {
            object: TpmObject {
                public: created.out_public,
                private: created.out_private,
                saved: None,
            },
            key,
        })
    }

    /// Reads a role key's blob file and checks that the TPM loads it (so that a blob this TPM
    /// rejects fails at start, not at first use).
    pub(super) fn load_role_blob(
        &mut self,
        path: &Path,
        bytes: &[u8],
    ) -> Result<RoleKey, KeyError> {
        let corrupt = |reason| KeyError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let object = TpmObject::from_bytes(bytes)
            .ok_or_else(|| corrupt("not a TPM2B_PUBLIC followed by a TPM2B_PRIVATE"))?;
        if !templates::is_signing_key(&object.public) {
            return Err(corrupt("not a non-exportable ECDSA P-256 signing key"));
        }
        let key = ecc_public_key(&object.public)?;
        let mut transient = Vec::new();
        let loaded = self.load_primary(&mut transient).and_then(|primary| {
            let handle = self
                .ctx
                .execute_with_session(Some(AuthSession::Password), |ctx| {
                    ctx.load(primary, object.private.clone(), object.public.clone())
                })
                .map_err(KeyError::tpm("TPM2_Load"))?;
            transient.push(handle.into());
            Ok(self.ctx.context_save(handle.into()).ok())
        });
        let saved = self.finish(transient, loaded)?;
        Ok(RoleKey {
            object: TpmObject { saved, ..object },
            key,
        })
    }

    pub(super) fn sign(
        &mut self,
        role: Role,
        digest: Digest,
        transient: &mut Vec<ObjectHandle>,
    ) -> Result<Vec<u8>, KeyError> {
        let key = KeyHandle::from(self.load(Slot::Role(role), transient)?);
        let ticket = null_hashcheck_ticket()?;
        let scheme = SignatureScheme::EcDsa {
            hash_scheme: HashScheme::new(HashingAlgorithm::Sha256),
        };
        let signature = self
            .ctx
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.sign(key, digest, scheme, ticket)
            })
            .map_err(KeyError::tpm("TPM2_Sign"))?;
        match signature {
            Signature::EcDsa(signature) => der::ecdsa_signature(
                signature.signature_r().value(),
                signature.signature_s().value(),
            )
            .ok_or(KeyError::Crypto("the TPM returned an oversized signature")),
            _ => Err(KeyError::Crypto("the TPM returned a non-ECDSA signature")),
        }
    }
}

impl TpmObject {
    /// TPM2B_PUBLIC followed by TPM2B_PRIVATE, as they are marshalled for the TPM.
    pub(super) fn to_bytes(&self) -> Result<Vec<u8>, KeyError> {
        let mut bytes = PublicBuffer::try_from(self.public.clone())
            .and_then(|public| public.marshall())
            .map_err(KeyError::tpm("marshalling a TPM2B_PUBLIC"))?;
        let private = self.private.value();
        let size = u16::try_from(private.len()).map_err(|_| KeyError::Crypto("private size"))?;
        bytes.extend_from_slice(&size.to_be_bytes());
        bytes.extend_from_slice(private);
        Ok(bytes)
    }

    pub(super) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (public, rest) = split_tpm2b(bytes)?;
        let (private, rest) = split_tpm2b(rest)?;
        if !rest.is_empty() {
            return None;
        }
        let public = PublicBuffer::unmarshall(public)
            .and_then(Public::try_from)
            .ok()?;
        let private = Private::try_from(&private[2..]).ok()?;
        Some(Self {
            public,
            private,
            saved: None,
        })
    }
}

/// Splits a sized buffer (2-byte big-endian size, then the bytes) off the front of `bytes`.
fn split_tpm2b(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let size = usize::from(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]));
    (bytes.len() >= 2 + size).then(|| bytes.split_at(2 + size))
}

pub(super) fn create_primary(ctx: &mut Context) -> Result<(KeyHandle, PublicKey), KeyError> {
    let template = templates::storage_key().map_err(KeyError::tpm("a key template"))?;
    let created = ctx
        .execute_with_session(Some(AuthSession::Password), |ctx| {
            ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
        })
        .map_err(KeyError::tpm("TPM2_CreatePrimary"))?;
    match ecc_public_key(&created.out_public) {
        Ok(key) => Ok((created.key_handle, key)),
        Err(e) => {
            let _ = ctx.flush_context(created.key_handle.into());
            Err(e)
        }
    }
}

fn ecc_public_key(public: &Public) -> Result<PublicKey, KeyError> {
    match public {
        Public::Ecc { unique, .. } => {
            PublicKey::from_coordinates(unique.x().value(), unique.y().value())
        }
        _ => None,
    }
    .ok_or(KeyError::Crypto("the TPM returned no P-256 public key"))
}

/// The ticket for signing a digest that the TPM did not compute (allowed for unrestricted keys).
fn null_hashcheck_ticket() -> Result<HashcheckTicket, KeyError> {
    HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
        tag: TPM2_ST_HASHCHECK,
        hierarchy: TPM2_RH_NULL,
        digest: Default::default(),
    })
    .map_err(KeyError::tpm("a hashcheck ticket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_files_round_trip() {
        let public = templates::signing_key().expect("template");
        let private = Private::try_from(vec![7; 100]).expect("private");
        let object = TpmObject {
            public: public.clone(),
            private,
            saved: None,
        };
        let bytes = object.to_bytes().expect("marshal");
        let back = TpmObject::from_bytes(&bytes).expect("unmarshal");
        assert_eq!(back.public, public);
        assert_eq!(back.private.value(), &[7; 100]);
        assert!(TpmObject::from_bytes(&bytes[..bytes.len() - 1]).is_none());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(TpmObject::from_bytes(&longer).is_none());
        assert!(TpmObject::from_bytes(&[]).is_none());
    }
}
