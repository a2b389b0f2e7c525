//! `npk import|export` on `.safetensors` files: the files and stores they produce, their
//! `--json` documents and their exit codes.

use numpack::safetensors;
use numpack::{DType, OpenOptions, Store};

mod npk_cli;
use npk_cli::{code, json, npk, stderr};

#[test]
fn export_then_import_with_selection_and_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, back, file) = (tmp.path().join("s.npk"), tmp.path().join("b.npk"), tmp.path().join("m.safetensors"));
    let s = Store::open(&store, OpenOptions { create: true, ..Default::default() }).unwrap();
    s.save("model.w", DType::Float32, &[2, 2], &[0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64]).unwrap();
    s.save("ids", DType::Int64, &[1], &7i64.to_le_bytes()).unwrap();
    s.save("z", DType::Complex128, &[1], &[0; 16]).unwrap();
    s.close().unwrap();

    // Every array: complex128 has no safetensors dtype (UNSUPPORTED), nothing is written.
    let o = npk(&[&"export", &store, &file]);
    assert_eq!(code(&o), 9, "{}", stderr(&o));
    assert!(stderr(&o).contains("complex128"), "{}", stderr(&o));
    assert!(!file.exists());
    let v = json(0, &[&"export", &store, &"model.w", &"ids", &file, &"--metadata", &"format=pt"]);
    assert_eq!(v["tensors"][0]["name"], "ids");
    assert_eq!(v["tensors"][1]["shape"], serde_json::json!([2, 2]));
    let h = safetensors::info(&file).unwrap().header;
    assert_eq!(h.metadata, vec![("format".to_string(), "pt".to_string())]);
    // The file exists now: exit 5 (ALREADY_EXISTS) until --overwrite.
    json(5, &[&"export", &store, &"ids", &file]);
    json(0, &[&"export", &store, &"model.w", &"ids", &file, &"--overwrite", &"--metadata", &"format=pt"]);
    let o = npk(&[&"export", &store, &file, &"--metadata", &"novalue"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));

    let v = json(0, &[&"import", &back, &file, &"--tensor", &"model.w"]);
    assert_eq!(v["arrays"].as_array().unwrap().len(), 1);
    assert_eq!(v["arrays"][0]["name"], "model.w");
    let v = json(0, &[&"import", &back, &file, &"--overwrite"]);
    assert_eq!(v["arrays"].as_array().unwrap().len(), 2);
    assert_eq!(v["metadata"]["format"], "pt");
    let b = Store::open(&back, OpenOptions { read_only: true, ..Default::default() }).unwrap();
    assert_eq!(b.load("ids").unwrap().1, 7i64.to_le_bytes());
    // A missing tensor is NOT_FOUND (exit 4); --name belongs to .npy imports.
    json(4, &[&"import", &back, &file, &"--tensor", &"nope"]);
    assert_eq!(code(&npk(&[&"import", &back, &file, &"--name", &"x"])), 3);
    // Several arrays cannot go to one .npy.
    assert_eq!(code(&npk(&[&"export", &store, &"ids", &"model.w", &tmp.path().join("x.npy")])), 3);
}

#[test]
fn a_damaged_file_is_reported_and_imports_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, file) = (tmp.path().join("s.npk"), tmp.path().join("bad.safetensors"));
    let json_hdr = br#"{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    let mut bytes = (json_hdr.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json_hdr);
    bytes.extend_from_slice(&[0; 8]); // 8 of the 16 bytes
    std::fs::write(&file, bytes).unwrap();
    let o = npk(&[&"import", &store, &file]);
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    assert!(stderr(&o).contains("cover 16 bytes"), "{}", stderr(&o));
}
