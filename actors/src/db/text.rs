//! Collaborative text edits.
//!
//! Contract: callers address text by Unicode scalar values (Rust `char`s). The document keeps
//! yrs' default byte offsets, so every index is converted here from a char index to the UTF-8
//! byte offset in the current string, which always lands on a char boundary. Ranges are
//! checked against the current length before yrs is called (yrs panics when out of range),
//! and the error names the actual length. [`replace_minimal`] rewrites a text to a new value
//! by deleting and inserting only the span between the common prefix and common suffix, so
//! concurrent edits elsewhere in the text survive a whole-string patch.

use yrs::{GetString, Text, TextRef, TransactionMut};

use super::DbError;

/// Byte offset of char index `index` in `s`, or `None` if `index` is past the end.
pub(crate) fn byte_offset(s: &str, index: usize) -> Option<usize> {
    if index == 0 {
        return Some(0);
    }
    match s.char_indices().nth(index) {
        Some((offset, _)) => Some(offset),
        None if s.chars().count() == index => Some(s.len()),
        None => None,
    }
}

/// Checks that yrs' idea of the text's length agrees with its string (false only for text a
/// foreign peer filled with embeds), so byte offsets computed from the string are valid.
fn plain(txn: &TransactionMut, text: &TextRef, field: &str) -> Result<String, DbError> {
    let s = text.get_string(txn);
    if text.len(txn) as usize == s.len() {
        Ok(s)
    } else {
        Err(DbError::NotText {
            field: field.to_owned(),
        })
    }
}

fn u32_offset(offset: usize) -> Result<u32, DbError> {
    u32::try_from(offset)
        .map_err(|_| DbError::TooLarge("text longer than 4 GiB cannot be edited".into()))
}

/// Checks an insert at char `index` into `current`, returning the byte offset.
pub(crate) fn check_insert(current: &str, index: u32) -> Result<usize, DbError> {
    byte_offset(current, index as usize).ok_or_else(|| {
        DbError::Invalid(format!(
            "text index {index} is past the end of the text, which has {} characters",
            current.chars().count()
        ))
    })
}

/// Checks a deletion of `len` chars at char `index` of `current`, returning the byte range.
pub(crate) fn check_delete(current: &str, index: u32, len: u32) -> Result<(usize, usize), DbError> {
    let chars = current.chars().count();
    let end = index as usize + len as usize;
    if end > chars {
        return Err(DbError::Invalid(format!(
            "cannot delete characters {index}..{end}: the text has {chars} characters"
        )));
    }
    let start_byte = byte_offset(current, index as usize).unwrap_or(current.len());
    let end_byte = byte_offset(current, end).unwrap_or(current.len());
    Ok((start_byte, end_byte - start_byte))
}

/// Inserts `chunk` at char `index`.
pub(crate) fn insert(
    txn: &mut TransactionMut,
    text: &TextRef,
    field: &str,
    index: u32,
    chunk: &str,
) -> Result<(), DbError> {
    let current = plain(txn, text, field)?;
    let offset = u32_offset(check_insert(&current, index)?)?;
    text.insert(txn, offset, chunk);
    Ok(())
}

/// Deletes `len` chars at char `index`.
pub(crate) fn delete(
    txn: &mut TransactionMut,
    text: &TextRef,
    field: &str,
    index: u32,
    len: u32,
) -> Result<(), DbError> {
    let current = plain(txn, text, field)?;
    let (start, bytes) = check_delete(&current, index, len)?;
    if bytes > 0 {
        text.remove_range(txn, u32_offset(start)?, u32_offset(bytes)?);
    }
    Ok(())
}

/// The differing span between `old` and `new`: (byte start, bytes to delete from `old`,
/// text to insert), found by trimming the common char prefix and suffix.
pub(crate) fn diff<'a>(old: &str, new: &'a str) -> (usize, usize, &'a str) {
    let prefix: usize = old
        .chars()
        .zip(new.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let (old_rest, new_rest) = (&old[prefix..], &new[prefix..]);
    let suffix: usize = old_rest
        .chars()
        .rev()
        .zip(new_rest.chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let deleted = old_rest.len() - suffix;
    (prefix, deleted, &new_rest[..new_rest.len() - suffix])
}

/// Rewrites `text` to `new` with a minimal single-span edit; no-op if equal. A text that a
/// foreign peer filled with embeds is replaced wholesale instead.
pub(crate) fn replace_minimal(txn: &mut TransactionMut, text: &TextRef, new: &str) {
    let old = text.get_string(txn);
    if old == new {
        return;
    }
    if text.len(txn) as usize != old.len() {
        let len = text.len(txn);
        text.remove_range(txn, 0, len);
        text.insert(txn, 0, new);
        return;
    }
    let (start, deleted, inserted) = diff(&old, new);
    // Offsets are bounded by the string lengths, which yrs itself stores as u32.
    let (Ok(start), Ok(deleted)) = (u32::try_from(start), u32::try_from(deleted)) else {
        return;
    };
    if deleted > 0 {
        text.remove_range(txn, start, deleted);
    }
    text.insert(txn, start, inserted);
}
