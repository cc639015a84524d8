//! Decoding and canonical re-encoding of yrs v1 updates.
//!
//! Contract: [`decode`] turns bytes into a `yrs::Update` or a [`DbError::BadUpdate`], never a
//! panic: it first checks that the header's client count is plausible for the input length
//! (yrs reserves memory for declared counts, so a few forged bytes could otherwise cost
//! hundreds of megabytes), then that no value nests arrays or maps more than
//! [`MAX_ANY_DEPTH`] deep (yrs decodes them recursively, so a 200 KB update nesting 100,000
//! arrays overflowed the stack, an abort that `catch_unwind` cannot stop: fuzzing finding,
//! docs/fuzzing.md), and runs the decoder under `catch_unwind`.
//! [`canonical_snapshot`] re-encodes a full-state update so that equal content always gives
//! equal bytes, whatever history produced it.

use std::panic::catch_unwind;

use yrs::block::{
    ItemContent, BLOCK_GC_REF_NUMBER, BLOCK_ITEM_ANY_REF_NUMBER, BLOCK_ITEM_DOC_REF_NUMBER,
    BLOCK_SKIP_REF_NUMBER, HAS_ORIGIN, HAS_PARENT_SUB, HAS_RIGHT_ORIGIN,
};
use yrs::encoding::read::{self, Read};
use yrs::updates::decoder::{Decode, Decoder, DecoderV1};
use yrs::{ClientID, Doc, Options, ReadTxn, StateVector, Transact, Update};

use super::DbError;

/// Decodes a v1 update after a sanity check of its header, catching decoder panics.
pub(crate) fn decode(update_v1: &[u8]) -> Result<Update, DbError> {
    check_header(update_v1)?;
    // The nesting scan uses yrs' reads too, which may panic (debug assertions on ids).
    catch_unwind(|| {
        check_nesting(update_v1)?;
        Update::decode_v1(update_v1)
            .map_err(|e| DbError::BadUpdate(format!("the update bytes could not be decoded: {e}")))
    })
    .map_err(|_| DbError::BadUpdate("the update bytes could not be decoded".into()))?
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

/// Deepest nesting of arrays and maps inside one value of an update (the data model writes
/// at most [`super::MAX_DEPTH`]); deeper updates are refused before yrs decodes them.
pub(crate) const MAX_ANY_DEPTH: usize = 128;

/// Why a nesting scan stopped.
enum Scan {
    /// The bytes are not a v1 update; yrs' decoder then says why.
    Malformed,
    TooDeep,
}

impl From<read::Error> for Scan {
    fn from(_: read::Error) -> Self {
        Scan::Malformed
    }
}

/// Walks a v1 update the way `Update::decode_v1` reads it, with the same primitive reads,
/// skipping every value without building it, and refuses values nested deeper than
/// [`MAX_ANY_DEPTH`]. Content that holds no nested values is read by yrs itself.
fn check_nesting(update_v1: &[u8]) -> Result<(), DbError> {
    match scan_update(&mut DecoderV1::from(update_v1)) {
        Ok(()) | Err(Scan::Malformed) => Ok(()),
        Err(Scan::TooDeep) => Err(DbError::BadUpdate(format!(
            "the update nests values more than {MAX_ANY_DEPTH} deep"
        ))),
    }
}

fn scan_update(d: &mut DecoderV1) -> Result<(), Scan> {
    let clients: u32 = d.read_var()?;
    for _ in 0..clients {
        let blocks: u32 = d.read_var()?;
        d.read_client()?;
        let _clock: u32 = d.read_var()?;
        for _ in 0..blocks {
            scan_block(d)?;
        }
    }
    // The delete set that follows holds only ids and lengths.
    Ok(())
}

fn scan_block(d: &mut DecoderV1) -> Result<(), Scan> {
    match d.read_info()? {
        BLOCK_SKIP_REF_NUMBER => {
            let _len: u32 = d.read_var()?;
        }
        BLOCK_GC_REF_NUMBER => {
            d.read_len()?;
        }
        info => {
            if info & HAS_ORIGIN != 0 {
                d.read_left_id()?;
            }
            if info & HAS_RIGHT_ORIGIN != 0 {
                d.read_right_id()?;
            }
            if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
                if d.read_parent_info()? {
                    d.read_string()?;
                } else {
                    d.read_left_id()?;
                }
                if info & HAS_PARENT_SUB != 0 {
                    d.read_string()?;
                }
            }
            match info & 0b1111 {
                BLOCK_ITEM_ANY_REF_NUMBER => {
                    for _ in 0..d.read_len()? {
                        scan_any(d, 1)?;
                    }
                }
                BLOCK_ITEM_DOC_REF_NUMBER => {
                    d.read_string()?;
                    scan_any(d, 1)?;
                }
                _ => {
                    ItemContent::decode(d, info)?;
                }
            }
        }
    }
    Ok(())
}

/// Skips one value as `yrs::Any::decode` reads it; `depth` counts the containers it is in.
fn scan_any(d: &mut DecoderV1, depth: usize) -> Result<(), Scan> {
    match d.read_u8()? {
        127 | 126 | 121 | 120 => {}
        125 => {
            d.read_var::<i64>()?;
        }
        124 => {
            d.read_f32()?;
        }
        123 => {
            d.read_f64()?;
        }
        122 => {
            d.read_i64()?;
        }
        119 => {
            d.read_string()?;
        }
        tag @ (117 | 118) => {
            if depth > MAX_ANY_DEPTH {
                return Err(Scan::TooDeep);
            }
            let len: usize = d.read_var()?;
            for _ in 0..len {
                if tag == 118 {
                    d.read_string()?;
                }
                scan_any(d, depth + 1)?;
            }
        }
        116 => {
            d.read_buf()?;
        }
        _ => return Err(Scan::Malformed),
    }
    Ok(())
}
