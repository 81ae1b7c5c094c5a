//! The storage secret: random bytes, salted sessions, the PCR policy, sealing and unsealing.

use ring::rand::{SecureRandom, SystemRandom};
use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::SessionType;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::handles::{KeyHandle, ObjectHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Digest, PcrSelectionList, PcrSelectionListBuilder, PcrSlot, SensitiveData, SymmetricDefinition,
};

use super::{RANDOM_CHUNK, SEALED_FILE, Sealing, Slot, TpmObject, TpmState, templates};
use crate::config::PcrPolicy;
use crate::error::KeyError;
use crate::secret::SecretBytes;
use crate::wrap::STORAGE_SECRET_LEN;

impl TpmState {
    /// Random bytes: the TPM's generator XOR the operating system's, so neither a weak OS
    /// generator nor an eavesdropper on the TPM bus alone can predict them.
    pub(super) fn random(&mut self, len: usize) -> Result<SecretBytes, KeyError> {
        let mut out = SecretBytes::zeroed(len);
        SystemRandom::new()
            .fill(out.as_mut_bytes())
            .map_err(|_| KeyError::Crypto("OS random numbers"))?;
        let mut filled = 0;
        while filled < len {
            let want = (len - filled).min(RANDOM_CHUNK);
            let bytes = self
                .ctx
                .execute_without_session(|ctx| ctx.get_random(want))
                .map_err(KeyError::tpm("TPM2_GetRandom"))?;
            if bytes.is_empty() {
                return Err(KeyError::Crypto("the TPM returned no random bytes"));
            }
            for (out, tpm) in out.as_mut_bytes()[filled..].iter_mut().zip(bytes.value()) {
                *out ^= tpm;
            }
            filled += bytes.len().min(len - filled);
        }
        Ok(out)
    }

    /// Starts a session salted with the (loaded) storage key: the salt is exchanged inside the
    /// TPM, so an eavesdropper cannot derive the session key that encrypts the parameters.
    fn salted_session(
        &mut self,
        primary: KeyHandle,
        kind: SessionType,
        decrypt: bool,
        encrypt: bool,
        transient: &mut Vec<ObjectHandle>,
    ) -> Result<AuthSession, KeyError> {
        let session = self
            .ctx
            .start_auth_session(
                Some(primary),
                None,
                None,
                kind,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(KeyError::tpm("TPM2_StartAuthSession"))?
            .ok_or(KeyError::Crypto("the TPM returned no session"))?;
        transient.push(SessionHandle::from(session).into());
        let (attributes, mask) = SessionAttributesBuilder::new()
            .with_continue_session(true)
            .with_decrypt(decrypt)
            .with_encrypt(encrypt)
            .build();
        self.ctx
            .tr_sess_set_attributes(session, attributes, mask)
            .map_err(KeyError::tpm("session attributes"))?;
        Ok(session)
    }

    /// The policy digest of `sealing`, from a trial session: TPM2_PolicyAuthorize by the
    /// signing key (empty policyRef) if there is one, then "PCRs `pcrs` hold their current
    /// values" if there are any (the order systemd's own sealing uses).
    fn policy_digest(&mut self, sealing: &Sealing) -> Result<Digest, KeyError> {
        let mut transient = Vec::new();
        let digest = (|| {
            let session = self
                .ctx
                .start_auth_session(
                    None,
                    None,
                    None,
                    SessionType::Trial,
                    SymmetricDefinition::AES_128_CFB,
                    HashingAlgorithm::Sha256,
                )
                .map_err(KeyError::tpm("TPM2_StartAuthSession"))?
                .ok_or(KeyError::Crypto("the TPM returned no session"))?;
            transient.push(SessionHandle::from(session).into());
            let policy =
                PolicySession::try_from(session).map_err(KeyError::tpm("a policy session"))?;
            if let Some(signed) = &sealing.signed {
                self.trial_authorize(policy, signed, &mut transient)?;
            }
            if !sealing.pcrs.is_empty() {
                self.ctx
                    .policy_pcr(policy, Digest::default(), pcr_selection(&sealing.pcrs)?)
                    .map_err(KeyError::tpm("TPM2_PolicyPCR"))?;
            }
            self.ctx
                .policy_get_digest(policy)
                .map_err(KeyError::tpm("TPM2_PolicyGetDigest"))
        })();
        self.finish(transient, digest)
    }

    /// Creates a new storage secret and seals it under the storage key.
    pub(super) fn seal_new_secret(&mut self, sealing: &Sealing) -> Result<TpmObject, KeyError> {
        let secret = self.random(STORAGE_SECRET_LEN)?;
        let policy = if sealing.is_bound() {
            Some(self.policy_digest(sealing)?)
        } else {
            None
        };
        let template = templates::sealed_secret(policy).map_err(KeyError::tpm("a template"))?;
        let data =
            SensitiveData::try_from(secret.as_bytes()).map_err(KeyError::tpm("the sealed data"))?;
        let mut transient = Vec::new();
        let created = (|| {
            let primary = self.load_primary(&mut transient)?;
            // Decrypt: the command's first parameter (the secret) travels encrypted.
            let session =
                self.salted_session(primary, SessionType::Hmac, true, true, &mut transient)?;
            self.ctx
                .execute_with_session(Some(session), |ctx| {
                    ctx.create(primary, template, None, Some(data), None, None)
                })
                .map_err(KeyError::tpm("TPM2_Create"))
        })();
        let created = self.finish(transient, created)?;
        Ok(TpmObject {
            public: created.out_public,
            private: created.out_private,
            saved: None,
        })
    }

    /// Unseals the storage secret for one operation, flushing whatever it loaded.
    pub(super) fn storage_secret(&mut self, sealing: &Sealing) -> Result<SecretBytes, KeyError> {
        let mut transient = Vec::new();
        let result = self.unseal(sealing, &mut transient);
        self.finish(transient, result)
    }

    fn unseal(
        &mut self,
        sealing: &Sealing,
        transient: &mut Vec<ObjectHandle>,
    ) -> Result<SecretBytes, KeyError> {
        let pcrs = &sealing.pcrs;
        let sealed = self.load(Slot::Sealed, transient)?;
        let mut parent = Vec::new();
        let kind = if sealing.is_bound() {
            SessionType::Policy
        } else {
            SessionType::Hmac
        };
        // Encrypt: the response's first parameter (the secret) travels encrypted. The storage
        // key is only needed to start the session.
        let session = self
            .load_primary(&mut parent)
            .and_then(|primary| self.salted_session(primary, kind, false, true, transient));
        let session = self.finish(parent, session)?;
        if let Some(signed) = &sealing.signed {
            let policy =
                PolicySession::try_from(session).map_err(KeyError::tpm("a policy session"))?;
            self.authorize(policy, signed, transient)?;
        }
        if !pcrs.is_empty() {
            let policy =
                PolicySession::try_from(session).map_err(KeyError::tpm("a policy session"))?;
            // An empty expected digest makes the TPM take the PCRs' current values; if they
            // differ from those at sealing time, the session's policy digest will not match the
            // object's and TPM2_Unseal fails.
            self.ctx
                .policy_pcr(policy, Digest::default(), pcr_selection(pcrs)?)
                .map_err(KeyError::tpm("TPM2_PolicyPCR"))?;
        }
        let data = self
            .ctx
            .execute_with_session(Some(session), |ctx| ctx.unseal(sealed))
            .map_err(|e| match &e {
                tss_esapi::Error::Tss2Error(rc)
                    if rc.kind() == Some(Tss2ResponseCodeKind::PolicyFail) =>
                {
                    KeyError::PcrPolicyFailed { pcrs: pcrs.clone() }
                }
                _ => KeyError::tpm("TPM2_Unseal")(e),
            })?;
        if data.len() != STORAGE_SECRET_LEN {
            return Err(KeyError::Corrupt {
                path: self.dir.join(SEALED_FILE),
                reason: "the sealed secret has the wrong length",
            });
        }
        Ok(SecretBytes::copy_from(data.value()))
    }
}

pub(super) fn pcr_selection(pcrs: &PcrPolicy) -> Result<PcrSelectionList, KeyError> {
    let slots = pcrs
        .indices()
        .iter()
        .map(|&index| PcrSlot::try_from(1u32 << index))
        .collect::<tss_esapi::Result<Vec<_>>>()
        .map_err(KeyError::tpm("a PCR selection"))?;
    PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &slots)
        .build()
        .map_err(KeyError::tpm("a PCR selection"))
}
