//! The signed PCR policy in the TPM: TPM2_PolicyAuthorize by an RSA key loaded with
//! TPM2_LoadExternal.
//!
//! Sealing (trial session): PolicyAuthorize(key name, empty policyRef) — its digest depends on
//! the key only, not on any PCR value, which is what lets a new signed release unseal a secret
//! sealed under an old one.
//!
//! Unsealing (policy session), in this order:
//! 1. TPM2_PolicyPCR over the signed PCRs with an empty expected digest: the session's digest
//!    becomes the policy of their *current* values; TPM2_PolicyGetDigest reads it.
//! 2. The signature file's entry approving exactly that digest, by the configured key
//!    ([`crate::signed_policy::find`]); none is the specific [`KeyError::PcrsNotApproved`].
//! 3. TPM2_VerifySignature of the entry's signature over aHash = SHA-256(digest ‖ empty
//!    policyRef) with the key, loaded in the owner hierarchy so that the TPM issues a ticket
//!    (a key of the null hierarchy gets a null ticket, which PolicyAuthorize refuses).
//! 4. TPM2_PolicyAuthorize(digest, empty policyRef, key name, ticket): the TPM checks that the
//!    session's digest is the approved one and replaces it by the sealing-time value.
//!
//! The caller then adds the literal TPM2_PolicyPCR, if any, and unseals.

use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_VERIFIED};
use tss_esapi::handles::{KeyHandle, ObjectHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::PolicySession;
use tss_esapi::structures::{
    Digest, HashScheme, Name, Nonce, Public, PublicBuilder, PublicKeyRsa,
    PublicRsaParametersBuilder, RsaExponent, RsaScheme, RsaSignature, Signature, VerifiedTicket,
};
use tss_esapi::tss2_esys::{TPM2B_DIGEST, TPMT_TK_VERIFIED};

use super::TpmState;
use super::sealing::pcr_selection;
use crate::error::KeyError;
use crate::signed_policy::{self, NoApproval, PolicyKey, SignedPolicy, hex};

/// The TPM2B_PUBLIC of the signing key: RSA-2048, RSASSA with SHA-256 only, public part only.
fn public_area(key: &PolicyKey) -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_user_with_auth(true)
        .with_sign_encrypt(true)
        .build()?;
    // The TPM's encoding of the usual exponent 65537 is 0.
    let exponent = match key.exponent {
        65_537 => RsaExponent::ZERO_EXPONENT,
        other => RsaExponent::create(other)?,
    };
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Rsa)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_rsa_parameters(
            PublicRsaParametersBuilder::new_unrestricted_signing_key(
                RsaScheme::RsaSsa(HashScheme::new(HashingAlgorithm::Sha256)),
                RsaKeyBits::Rsa2048,
                exponent,
            )
            .build()?,
        )
        .with_rsa_unique_identifier(PublicKeyRsa::try_from(key.modulus.clone())?)
        .build()
}

impl TpmState {
    /// Loads the signing key's public part into the owner hierarchy; returns it and its name.
    fn load_policy_key(
        &mut self,
        key: &PolicyKey,
        transient: &mut Vec<ObjectHandle>,
    ) -> Result<(KeyHandle, Name), KeyError> {
        let public = public_area(key).map_err(KeyError::tpm("the signing key's public area"))?;
        let handle = self
            .ctx
            .execute_without_session(|ctx| ctx.load_external_public(public, Hierarchy::Owner))
            .map_err(KeyError::tpm("TPM2_LoadExternal"))?;
        transient.push(handle.into());
        let name = self
            .ctx
            .tr_get_name(handle.into())
            .map_err(KeyError::tpm("the signing key's name"))?;
        Ok((handle, name))
    }

    /// Trial session: PolicyAuthorize by the signing key. The TPM checks no ticket in a trial
    /// session, so a null one stands in.
    pub(super) fn trial_authorize(
        &mut self,
        policy: PolicySession,
        signed: &SignedPolicy,
        transient: &mut Vec<ObjectHandle>,
    ) -> Result<(), KeyError> {
        let (_, name) = self.load_policy_key(&signed.key, transient)?;
        let null_ticket = VerifiedTicket::try_from(TPMT_TK_VERIFIED {
            tag: TPM2_ST_VERIFIED,
            hierarchy: TPM2_RH_NULL,
            digest: TPM2B_DIGEST::default(),
        })
        .map_err(KeyError::tpm("a null ticket"))?;
        self.ctx
            .policy_authorize(
                policy,
                Digest::default(),
                Nonce::default(),
                &name,
                null_ticket,
            )
            .map_err(KeyError::tpm("TPM2_PolicyAuthorize"))
    }

    /// Policy session: steps 1 to 4 of the module documentation.
    pub(super) fn authorize(
        &mut self,
        policy: PolicySession,
        signed: &SignedPolicy,
        transient: &mut Vec<ObjectHandle>,
    ) -> Result<(), KeyError> {
        let pcrs = signed.config.pcrs();
        self.ctx
            .policy_pcr(policy, Digest::default(), pcr_selection(pcrs)?)
            .map_err(KeyError::tpm("TPM2_PolicyPCR"))?;
        let current = self
            .ctx
            .policy_get_digest(policy)
            .map_err(KeyError::tpm("TPM2_PolicyGetDigest"))?;
        let approval = signed_policy::find(&signed.approvals, &signed.key, current.value())
            .map_err(|no| match no {
                NoApproval::Unapproved => KeyError::PcrsNotApproved {
                    pcrs: pcrs.clone(),
                    key: hex(&signed.key.pkfp),
                    signature: signed.signature_path().to_owned(),
                },
                NoApproval::OtherKey(found) => KeyError::PcrSignatureOtherKey {
                    pcrs: pcrs.clone(),
                    found: hex(&found),
                    expected: hex(&signed.key.pkfp),
                    signature: signed.signature_path().to_owned(),
                },
            })?;
        // aHash with the empty policyRef is the hash of the approved digest alone.
        let a_hash = ring::digest::digest(&ring::digest::SHA256, &approval.policy);
        let a_hash = Digest::try_from(a_hash.as_ref()).map_err(KeyError::tpm("a digest"))?;
        let signature = PublicKeyRsa::try_from(approval.signature.clone())
            .and_then(|sig| RsaSignature::create(HashingAlgorithm::Sha256, sig))
            .map_err(KeyError::tpm("an RSA signature"))?;
        let (key, name) = self.load_policy_key(&signed.key, transient)?;
        let ticket = self
            .ctx
            .execute_without_session(|ctx| {
                ctx.verify_signature(key, a_hash, Signature::RsaSsa(signature))
            })
            .map_err(|e| match &e {
                tss_esapi::Error::Tss2Error(rc)
                    if matches!(
                        rc.kind(),
                        Some(Tss2ResponseCodeKind::Signature | Tss2ResponseCodeKind::Size)
                    ) =>
                {
                    KeyError::PcrSignatureInvalid {
                        pcrs: pcrs.clone(),
                        key: hex(&signed.key.pkfp),
                        signature: signed.signature_path().to_owned(),
                    }
                }
                _ => KeyError::tpm("TPM2_VerifySignature")(e),
            })?;
        self.ctx
            .policy_authorize(policy, current, Nonce::default(), &name, ticket)
            .map_err(KeyError::tpm("TPM2_PolicyAuthorize"))
    }
}
