//! One suite, run against every [`Store`]: the in-memory stand-in must behave like sled.

#![allow(clippy::unwrap_used)]

use super::*;

fn suite(store: &dyn Store) {
    assert_eq!(store.get(b"a").unwrap(), None);
    store.put(b"a1", b"x").unwrap();
    let mut batch = WriteBatch::new();
    batch
        .put(b"a2".to_vec(), b"y".to_vec())
        .put(b"b1".to_vec(), b"z".to_vec())
        .remove(b"a1".to_vec());
    store.write(batch).unwrap();
    assert_eq!(store.get(b"a1").unwrap(), None);
    assert_eq!(store.get(b"a2").unwrap(), Some(b"y".to_vec()));
    for i in (0u8..20).rev() {
        store.put(&[b'c', i], &[i]).unwrap();
    }
    let scanned = store.scan_prefix(b"c").unwrap();
    assert_eq!(scanned.len(), 20);
    assert!(
        scanned.windows(2).all(|w| w[0].0 < w[1].0),
        "scan is in key order"
    );
    assert_eq!(
        store.scan_prefix(b"a").unwrap(),
        vec![(b"a2".to_vec(), b"y".to_vec())]
    );
    assert!(store.scan_prefix(b"zz").unwrap().is_empty());
    store.flush().unwrap();
}

#[test]
fn mem_store_conforms() {
    suite(&MemStore::new());
}

#[test]
fn sled_store_conforms_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let store = SledStore::open(&path).unwrap();
        suite(&store);
    }
    let store = SledStore::open(&path).unwrap();
    assert_eq!(store.get(b"b1").unwrap(), Some(b"z".to_vec()));
    // A second open of a store in use says so.
    let err = SledStore::open(&path).err().expect("the store is locked");
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn mem_store_crash_loses_only_unflushed() {
    let store = MemStore::new();
    store.put(b"k1", b"1").unwrap();
    store.flush().unwrap();
    store.put(b"k2", b"2").unwrap();
    assert_eq!(store.unflushed(), 1);
    store.crash();
    assert_eq!(store.get(b"k1").unwrap(), Some(b"1".to_vec()));
    assert_eq!(store.get(b"k2").unwrap(), None);
}
