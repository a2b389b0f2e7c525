//! The `npk` binary on a store written as NumPack 0.7 writes segmented arrays: info,
//! head, check (clean, then a damaged manifest reported precisely), export, compact and
//! a package round trip.

use std::fs;

use numpack::{DType, OpenOptions, Store};

mod common;
mod npk_cli;
mod seg07;
use npk_cli::{code, json, npk, stdout};
use seg07::*;

#[test]
fn npk_works_on_segmented_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join("s.npk");
    let a = arr("seg", DType::Int32, &[25, 2], 1, Some(24)); // 3 rows per segment
    let want = a.data.clone();
    make07(&s, &[a, arr("plain", DType::Uint8, &[4], 2, None)]);

    let v = json(0, &[&"info", &s]);
    let seg = v["arrays"].as_array().unwrap().iter().find(|x| x["name"] == "seg").unwrap().clone();
    assert_eq!((seg["shape"].clone(), seg["rows"].as_u64()), (serde_json::json!([25, 2]), Some(25)));
    let v = json(0, &[&"head", &s, &"seg", &"-n", &"5"]);
    assert!(v.to_string().contains(&i32::from_le_bytes(want[32..36].try_into().unwrap()).to_string()), "{v}");
    let v = json(0, &[&"check", &s]);
    assert_eq!((v["ok"].as_bool(), v["arrays"].as_u64()), (Some(true), Some(2)));

    // Export streams every segment into one .npy.
    let npy = tmp.path().join("seg.npy");
    json(0, &[&"export", &s, &"seg", &npy]);
    let info = numpack::npy::info(&npy).unwrap();
    assert_eq!(info.shape, vec![25, 2]);
    assert_eq!(fs::read(&npy).unwrap()[info.data_offset as usize..], want[..]);

    // Deleted rows, then `npk compact`: below the default 256 MiB target the array
    // becomes one plain file, as NumPack 0.7's update() does.
    let st = Store::open(&s, OpenOptions::default()).unwrap();
    st.delete_rows("seg", &[0, 10, 24]).unwrap();
    st.close().unwrap();
    json(0, &[&"compact", &s]);
    assert!(s.join("data_seg.npkd").exists() && !s.join("data_seg.npkseg").exists() && !s.join("data_seg_segments").exists());
    json(0, &[&"check", &s]);

    // A package keeps the segments of another segmented array.
    let t = tmp.path().join("t.npk");
    make07(&t, &[arr("seg", DType::Float64, &[9, 1], 3, Some(16))]);
    let pkg = tmp.path().join("t.npkg");
    json(0, &[&"pack", &t, &"-o", &pkg]);
    let v = json(0, &[&"package-info", &pkg]);
    assert!(v.to_string().contains("data_seg_segments/seg_000004.npkd"), "{v}");
    let u = tmp.path().join("u.npk");
    json(0, &[&"unpack", &pkg, &"-o", &u]);
    json(0, &[&"check", &u]);
    let a = Store::open(&t, OpenOptions { read_only: true, ..Default::default() }).unwrap().load("seg").unwrap();
    let b = Store::open(&u, OpenOptions { read_only: true, ..Default::default() }).unwrap().load("seg").unwrap();
    assert_eq!(a, b);

    // A manifest pointing outside the store: check names the file and the cause.
    fs::write(t.join("data_seg.npkseg"), br#"{"version":1,"segments":[{"file":"../../etc/passwd","rows":9,"bytes":72}]}"#).unwrap();
    let v = json(1, &[&"check", &t]);
    let f = &v["findings"][0];
    assert_eq!((f["id"].as_str(), f["file"].as_str()), (Some("segment-manifest-corrupt"), Some("data_seg.npkseg")));
    let o = npk(&[&"head", &t, &"seg"]);
    assert_eq!(code(&o), 8, "{}", stdout(&o));
}
