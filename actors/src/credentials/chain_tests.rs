//! One test per chain rule (`chain.rs`).

#![allow(clippy::unwrap_used)]

use super::*;
use crate::credentials::{authorize_device, Role, Signer, Subject};
use crate::types::KeyPair;

fn key(n: u8) -> KeyPair {
    KeyPair::from_secret([n; 32])
}

/// Something a device signs for its identity.
fn member_subject() -> Subject {
    Subject {
        id: key(200).public(),
        assertion: Assertion::SpaceMember {
            space_key: key(201).public(),
            role: Role::Editor,
        },
    }
}

/// The identity (key 1) and `n` devices (keys 10, 11, ...), each authorised by the one
/// before it, the first by the identity key: the signer of the last device.
fn chain_of(n: usize) -> (KeyPair, Vec<KeyPair>, Signer) {
    let identity = key(1);
    let mut signer = Signer::direct(identity.clone());
    let mut devices = Vec::new();
    for i in 0..n {
        let device = key(10 + u8::try_from(i).unwrap());
        let auth = signer.authorize_device(device.public(), 5);
        signer = Signer::for_device(identity.public(), device.clone(), auth);
        devices.push(device);
    }
    (identity, devices, signer)
}

/// Re-signs `c` with `key` after a change (so only the changed rule can fail).
fn resign(c: &mut Credential, key: &KeyPair) {
    let signed = Signer {
        issuer: c.issuer,
        key: key.clone(),
        chain: c.proof.chain.as_deref().cloned(),
    }
    .issue(c.subject.clone(), c.issuance_date, c.parent_ids.clone());
    *c = signed;
}

#[test]
fn a_credential_signed_by_its_issuer_rests_on_no_device() {
    let (identity, _, signer) = chain_of(0);
    let c = signer.issue(member_subject(), 1, vec![]);
    assert_eq!(c.issuer, identity.public());
    assert!(c.verify_chain().unwrap().is_direct());
}

#[test]
fn chain_of_length_1_verifies_and_names_the_device() {
    let (_, devices, signer) = chain_of(1);
    let c = signer.issue(member_subject(), 1, vec![]);
    assert_eq!(c.verify_chain().unwrap().devices(), [devices[0].public()]);
}

#[test]
fn chain_of_length_2_verifies_and_names_both_devices_signer_first() {
    let (_, devices, signer) = chain_of(2);
    let c = signer.issue(member_subject(), 1, vec![]);
    assert_eq!(
        c.verify_chain().unwrap().devices(),
        [devices[1].public(), devices[0].public()]
    );
}

#[test]
fn chain_of_the_maximum_length_verifies() {
    let (_, devices, signer) = chain_of(MAX_CHAIN_LINKS);
    let c = signer.issue(member_subject(), 1, vec![]);
    let chain = c.verify_chain().unwrap();
    assert_eq!(chain.devices().len(), MAX_CHAIN_LINKS);
    assert_eq!(chain.devices()[0], devices[MAX_CHAIN_LINKS - 1].public());
}

#[test]
fn chain_past_the_depth_limit_is_refused_clearly() {
    let (_, _, signer) = chain_of(MAX_CHAIN_LINKS + 1);
    let c = signer.issue(member_subject(), 1, vec![]);
    let err = c.verify_chain().unwrap_err();
    assert_eq!(
        err,
        CredentialError::ChainTooLong {
            max: MAX_CHAIN_LINKS
        }
    );
    assert_eq!(err.to_string(), "device chain is longer than 8 links");
}

#[test]
fn a_missing_chain_is_refused() {
    let (_, _, signer) = chain_of(1);
    let mut c = signer.issue(member_subject(), 1, vec![]);
    c.proof.chain = None;
    resign(&mut c, &key(10));
    assert!(matches!(
        c.verify_chain(),
        Err(CredentialError::MissingChain { .. })
    ));
}

#[test]
fn a_broken_link_signature_is_refused() {
    // The middle link of a chain of 2 (device 1 authorising device 2) is tampered with.
    let (_, _, signer) = chain_of(2);
    let mut c = signer.issue(member_subject(), 1, vec![]);
    let link = c.proof.chain.as_deref_mut().unwrap();
    link.issuance_date += 1;
    assert_eq!(
        c.verify_chain(),
        Err(CredentialError::BadSignature(key(10).public()))
    );
    // The outermost signature is checked too.
    let mut c = signer.issue(member_subject(), 1, vec![]);
    c.issuance_date += 1;
    assert_eq!(
        c.verify_chain(),
        Err(CredentialError::BadSignature(key(11).public()))
    );
}

#[test]
fn a_link_issued_for_another_identity_is_refused() {
    // Device 10 holds a valid authorisation from identity 2, and signs for identity 1.
    let other = key(2);
    let device = key(10);
    let auth = authorize_device(&other, device.public(), 5);
    let c = Signer::for_device(key(1).public(), device, auth).issue(member_subject(), 1, vec![]);
    assert_eq!(
        c.verify_chain(),
        Err(CredentialError::WrongIssuer {
            link: 1,
            expected: key(1).public(),
            found: other.public(),
        })
    );
}

#[test]
fn a_link_naming_another_identity_in_its_assertion_is_refused() {
    // Issued by identity 1 (and signed by it), but asserting identity 2.
    let device = key(10);
    let mut auth = authorize_device(&key(1), device.public(), 5);
    auth.subject.assertion = Assertion::AuthorizedDevice {
        identity_key: key(2).public(),
        device_key: device.public(),
    };
    resign(&mut auth, &key(1));
    let c = Signer::for_device(key(1).public(), device, auth).issue(member_subject(), 1, vec![]);
    assert!(matches!(
        c.verify_chain(),
        Err(CredentialError::WrongIssuer { link: 1, .. })
    ));
}

#[test]
fn a_link_for_a_device_that_is_not_the_signer_is_refused() {
    // Device 11 signs, carrying the authorisation of device 10.
    let (_, _, signer) = chain_of(1);
    let auth = signer.chain.clone().unwrap();
    let c = Signer::for_device(key(1).public(), key(11), auth).issue(member_subject(), 1, vec![]);
    assert_eq!(
        c.verify_chain(),
        Err(CredentialError::NotTheSigner {
            link: 1,
            authorized: key(10).public(),
            signer: key(11).public(),
        })
    );
    // The subject id must be the device too, not only the assertion.
    let mut auth = signer.chain.clone().unwrap();
    auth.subject.id = key(11).public();
    resign(&mut auth, &key(1));
    let c = Signer::for_device(key(1).public(), key(10), auth).issue(member_subject(), 1, vec![]);
    assert!(matches!(
        c.verify_chain(),
        Err(CredentialError::NotTheSigner { link: 1, .. })
    ));
}

#[test]
fn a_link_that_is_not_an_authorization_is_refused() {
    let identity = key(1);
    let not_auth = Signer::direct(identity.clone()).issue(member_subject(), 1, vec![]);
    let c =
        Signer::for_device(identity.public(), key(10), not_auth).issue(member_subject(), 1, vec![]);
    assert_eq!(
        c.verify_chain(),
        Err(CredentialError::NotADeviceAuthorization { link: 1 })
    );
}

#[test]
fn a_device_that_authorizes_itself_is_refused() {
    // A device (never authorised by anyone) issues its own authorisation, carrying a copy of
    // it as the chain: the device appears twice.
    let identity = key(1).public();
    let device = key(10);
    let mut own = Signer {
        issuer: identity,
        key: device.clone(),
        chain: None,
    }
    .authorize_device(device.public(), 5);
    own.proof.chain = Some(Box::new(own.clone()));
    resign(&mut own, &device);
    let c = Signer::for_device(identity, device.clone(), own).issue(member_subject(), 1, vec![]);
    assert_eq!(
        c.verify_chain(),
        Err(CredentialError::RepeatedDevice(device.public()))
    );
}

#[test]
fn a_self_signed_credential_with_a_chain_is_refused() {
    let (_, _, signer) = chain_of(1);
    let mut c = Signer::direct(key(1)).issue(member_subject(), 1, vec![]);
    c.proof.chain = signer.chain.clone().map(Box::new);
    assert_eq!(
        c.verify_chain(),
        Err(CredentialError::UnexpectedChain(key(1).public()))
    );
}

#[test]
fn a_device_authorization_lists_the_device_then_its_authorizers() {
    let (identity, devices, signer) = chain_of(2);
    let third = key(30);
    let auth = signer.authorize_device(third.public(), 6);
    let verified = auth
        .verify_device_authorization(Some(identity.public()), third.public())
        .unwrap();
    assert_eq!(verified.identity, identity.public());
    assert_eq!(
        verified.devices,
        [third.public(), devices[1].public(), devices[0].public()]
    );
    // For another device, or another identity, it does not hold.
    assert!(matches!(
        auth.verify_device_authorization(Some(identity.public()), key(31).public()),
        Err(CredentialError::NotTheSigner { link: 0, .. })
    ));
    assert!(matches!(
        auth.verify_device_authorization(Some(key(2).public()), third.public()),
        Err(CredentialError::WrongIssuer { link: 0, .. })
    ));
    // Not an authorisation at all.
    let other = signer.issue(member_subject(), 1, vec![]);
    assert!(matches!(
        other.verify_device_authorization(None, third.public()),
        Err(CredentialError::NotADeviceAuthorization { link: 0 })
    ));
}
