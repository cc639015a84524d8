//! Identity -> device chains: how a device signs for its identity, and how a device
//! authorises another device without the identity key.
//!
//! Contract (the spec's Credentials rule, made exact): a credential whose issuer is not its
//! signer must carry in `proof.chain` an `AuthorizedDevice { identity_key = issuer,
//! device_key = signer }` credential issued by the same identity (subject = that device),
//! which verifies in turn by the same rule. The walk ends at a link signed by the identity
//! key itself (issuer = signer, no chain). Every link's signature is checked; a chain has at
//! most [`MAX_CHAIN_LINKS`] links and names no device twice. Verification returns the
//! [`DeviceChain`]: every device whose authority the credential rests on, so that a
//! revocation check is `chain.devices().iter().any(is_revoked)`.

use super::{Assertion, Credential, CredentialError};
use crate::types::PublicKey;

/// Most `AuthorizedDevice` links in one chain: the identity key authorises a device, which
/// may authorise another, and so on, 8 devices deep at most.
pub const MAX_CHAIN_LINKS: usize = 8;

/// The devices a verified credential rests on, signer first, then the device that
/// authorised it, and so on up to the device the identity key authorised itself. Empty for a
/// credential its issuer signed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceChain {
    devices: Vec<PublicKey>,
}

impl DeviceChain {
    /// Signer first, the identity key's own device last.
    pub fn devices(&self) -> &[PublicKey] {
        &self.devices
    }

    /// Whether the credential was signed by its issuer (no device involved).
    pub fn is_direct(&self) -> bool {
        self.devices.is_empty()
    }
}

/// The identity and devices of a verified standalone `AuthorizedDevice` credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub identity: PublicKey,
    /// The authorised device first, then the devices that authorised it (each authorised
    /// by the next), the identity key's own device last.
    pub devices: Vec<PublicKey>,
}

impl Credential {
    /// Checks the signature of this credential and of every link of its device chain, and
    /// the chain's shape (see the module docs). Returns the devices it rests on.
    pub fn verify_chain(&self) -> Result<DeviceChain, CredentialError> {
        let identity = self.issuer;
        let mut devices: Vec<PublicKey> = Vec::new();
        let mut current = self;
        loop {
            current.check_signature()?;
            let signer = current.proof.signer;
            if current.issuer == signer {
                if current.proof.chain.is_some() {
                    return Err(CredentialError::UnexpectedChain(signer));
                }
                return Ok(DeviceChain { devices });
            }
            let link_no = devices.len() + 1;
            let link = current
                .proof
                .chain
                .as_deref()
                .ok_or(CredentialError::MissingChain {
                    issuer: current.issuer,
                    signer,
                })?;
            if link_no > MAX_CHAIN_LINKS {
                return Err(CredentialError::ChainTooLong {
                    max: MAX_CHAIN_LINKS,
                });
            }
            let Assertion::AuthorizedDevice {
                identity_key,
                device_key,
            } = &link.subject.assertion
            else {
                return Err(CredentialError::NotADeviceAuthorization { link: link_no });
            };
            if link.issuer != identity || *identity_key != identity {
                return Err(CredentialError::WrongIssuer {
                    link: link_no,
                    expected: identity,
                    found: if link.issuer != identity {
                        link.issuer
                    } else {
                        *identity_key
                    },
                });
            }
            if *device_key != signer || link.subject.id != signer {
                return Err(CredentialError::NotTheSigner {
                    link: link_no,
                    authorized: *device_key,
                    signer,
                });
            }
            if devices.contains(&signer) {
                return Err(CredentialError::RepeatedDevice(signer));
            }
            devices.push(signer);
            current = link;
        }
    }

    /// Verifies this credential as a device's standalone authorisation: an
    /// `AuthorizedDevice { identity, device }` about `device`, issued by `identity`, whose
    /// chain verifies. `identity` is checked when given.
    pub fn verify_device_authorization(
        &self,
        identity: Option<PublicKey>,
        device: PublicKey,
    ) -> Result<DeviceAuthorization, CredentialError> {
        let Assertion::AuthorizedDevice {
            identity_key,
            device_key,
        } = &self.subject.assertion
        else {
            return Err(CredentialError::NotADeviceAuthorization { link: 0 });
        };
        let expected = identity.unwrap_or(self.issuer);
        if self.issuer != expected || *identity_key != expected {
            return Err(CredentialError::WrongIssuer {
                link: 0,
                expected,
                found: if self.issuer != expected {
                    self.issuer
                } else {
                    *identity_key
                },
            });
        }
        if *device_key != device || self.subject.id != device {
            return Err(CredentialError::NotTheSigner {
                link: 0,
                authorized: *device_key,
                signer: device,
            });
        }
        let chain = self.verify_chain()?;
        if chain.devices.contains(&device) {
            return Err(CredentialError::RepeatedDevice(device));
        }
        let mut devices = Vec::with_capacity(chain.devices.len() + 1);
        devices.push(device);
        devices.extend_from_slice(&chain.devices);
        Ok(DeviceAuthorization {
            identity: expected,
            devices,
        })
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
