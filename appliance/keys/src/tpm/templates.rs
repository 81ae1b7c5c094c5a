//! The TPM object templates. A template fixes what a key can ever do: the TPM enforces the
//! attributes for the key's whole life.

use tss_esapi::attributes::{ObjectAttributes, ObjectAttributesBuilder};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::structures::{
    Digest, EccPoint, EccScheme, HashScheme, KeyedHashScheme, Public, PublicBuilder,
    PublicEccParametersBuilder, PublicKeyedHashParameters, SymmetricDefinitionObject,
};

/// The storage key: the primary ECC P-256 key of the owner hierarchy, derived from the owner
/// seed, so the same template gives the same key on every start until the TPM is cleared.
/// Restricted decryption key (it can only be a parent), AES-128-CFB for its children's
/// protection, never leaves the TPM. Equivalent to
/// `tpm2_createprimary -C o -g sha256 -G ecc256:null:aes128cfb`.
pub(crate) fn storage_key() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// A role's signing key: ECDSA P-256 with SHA-256, generated inside the TPM
/// (`sensitiveDataOrigin`), which can neither leave this TPM (`fixedTPM`) nor be duplicated to
/// another parent (`fixedParent`). Not restricted, so it signs digests computed outside the TPM
/// (TLS handshakes, audit records). Its authorization value is empty: whoever can load the
/// blob into this TPM can sign, so access to the TPM device is what the sandbox guards.
pub(crate) fn signing_key() -> tss_esapi::Result<Public> {
    let attributes = signing_attributes()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_unrestricted_signing_key(
                EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

fn signing_attributes() -> tss_esapi::Result<ObjectAttributes> {
    ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_sign_encrypt(true)
        .build()
}

/// Whether a public area loaded from disk is one of our signing keys (a swapped-in blob pair
/// of another, exportable key under the same storage key is refused before use).
pub(crate) fn is_signing_key(public: &Public) -> bool {
    let Public::Ecc {
        object_attributes,
        name_hashing_algorithm,
        parameters,
        ..
    } = public
    else {
        return false;
    };
    signing_attributes().is_ok_and(|expected| *object_attributes == expected)
        && *name_hashing_algorithm == HashingAlgorithm::Sha256
        && parameters.ecc_curve() == EccCurve::NistP256
        && parameters.ecc_scheme() == EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256))
}

/// The sealed storage secret: a keyed-hash data object (no sign or decrypt ability, it only
/// holds 32 bytes) under the storage key. With a PCR policy, `userWithAuth` is clear and only a
/// policy session that satisfied TPM2_PolicyPCR can unseal it; without one, its empty
/// authorization value suffices. Neither `fixedTPM` nor `fixedParent` can be dropped later.
pub(crate) fn sealed_secret(policy: Option<Digest>) -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_no_da(true)
        .with_user_with_auth(policy.is_none())
        .build()?;
    let builder = PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default());
    match policy {
        Some(digest) => builder.with_auth_policy(digest).build(),
        None => builder.build(),
    }
}

/// Whether a public area loaded from disk is a sealed secret as [`sealed_secret`] makes it:
/// without PCR binding usable with its (empty) authorization value, with it only through a
/// policy.
pub(crate) fn is_sealed_secret(public: &Public, bound: bool) -> bool {
    let Public::KeyedHash {
        object_attributes,
        name_hashing_algorithm,
        auth_policy,
        ..
    } = public
    else {
        return false;
    };
    object_attributes.fixed_tpm()
        && object_attributes.fixed_parent()
        && !object_attributes.sign_encrypt()
        && !object_attributes.decrypt()
        && object_attributes.user_with_auth() != bound
        && auth_policy.is_empty() != bound
        && *name_hashing_algorithm == HashingAlgorithm::Sha256
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_build() {
        let signing = signing_key().expect("signing template");
        assert!(is_signing_key(&signing));
        assert!(!is_signing_key(&storage_key().expect("storage template")));
        assert!(!is_signing_key(
            &sealed_secret(None).expect("sealed template")
        ));
        let policy = Digest::try_from(vec![1; 32]).expect("digest");
        let sealed = sealed_secret(Some(policy)).expect("sealed template");
        assert!(!sealed.object_attributes().user_with_auth());
        assert_eq!(sealed.auth_policy().value(), &[1; 32]);
        assert!(is_sealed_secret(&sealed, true));
        assert!(!is_sealed_secret(&sealed, false));
        let unbound = sealed_secret(None).expect("sealed template");
        assert!(is_sealed_secret(&unbound, false));
        assert!(!is_sealed_secret(&unbound, true));
        assert!(!is_sealed_secret(&signing, false));
    }
}
