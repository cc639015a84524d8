//! Decoding and canonical re-encoding of yrs v1 updates.
//!
//! Contract: [`decode`] turns bytes into a `yrs::Update` or a [`DbError::BadUpdate`], never a
//! panic: it first checks that the header's client count is plausible for the input length
//! (yrs reserves memory for declared counts, so a few forged bytes could otherwise cost
//! hundreds of megabytes) and runs the decoder under `catch_unwind`.
//! [`canonical_snapshot`] re-encodes a full-state update so that equal content always gives
//! equal bytes, whatever history produced it.

use std::panic::catch_unwind;

use yrs::updates::decoder::Decode;
use yrs::{ClientID, Doc, Options, ReadTxn, StateVector, Transact, Update};

use super::DbError;

/// Decodes a v1 update after a sanity check of its header, catching decoder panics.
pub(crate) fn decode(update_v1: &[u8]) -> Result<Update, DbError> {
    check_header(update_v1)?;
    catch_unwind(|| Update::decode_v1(update_v1))
        .map_err(|_| DbError::BadUpdate("the update bytes could not be decoded".into()))?
        .map_err(|e| DbError::BadUpdate(format!("the update bytes could not be decoded: {e}")))
}

/// Re-encodes a full-state update after loading it into a scratch document in one
/// transaction; `None` if that fails (the caller then keeps the raw encoding).
pub(crate) fn canonical_snapshot(raw: &[u8], client_id: ClientID) -> Option<Vec<u8>> {
    let update = Update::decode_v1(raw).ok()?;
    let guid = yrs::uuid_v4_from(u128::from(client_id.get()));
    let scratch = Doc::with_options(Options::with_guid_and_client_id(guid, client_id));
    let mut txn = scratch.try_transact_mut().ok()?;
    txn.apply_update(update).ok()?;
    txn.commit();
    Some(txn.encode_state_as_update_v1(&StateVector::default()))
}

/// Cheap sanity check of an update's first length prefix (the number of clients). yrs
/// reserves memory for declared counts up front, so a few forged bytes could otherwise make
/// it allocate hundreds of megabytes; every client entry takes at least three bytes.
fn check_header(update_v1: &[u8]) -> Result<(), DbError> {
    let mut clients: u64 = 0;
    for (i, byte) in update_v1.iter().take(5).enumerate() {
        clients |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return if clients.saturating_mul(3) <= update_v1.len() as u64 {
                Ok(())
            } else {
                Err(DbError::BadUpdate(format!(
                    "the update declares {clients} clients but is only {} bytes long",
                    update_v1.len()
                )))
            };
        }
    }
    Err(DbError::BadUpdate(
        "the update's header is not a valid length".into(),
    ))
}
