use numpack::{DType, OpenOptions, Store};

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn smoke() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.npk");
    let s = Store::open(&p, OpenOptions { create: true, ..Default::default() }).unwrap();
    let data: Vec<f32> = (0..20).map(|x| x as f32).collect();
    s.save("a", DType::Float32, &[10, 2], &f32s(&data)).unwrap();
    s.delete_rows("a", &[1, 3]).unwrap();
    assert_eq!(s.info("a").unwrap().shape, vec![8, 2]);
    s.append("a", DType::Float32, &[2, 2], &f32s(&[100., 101., 102., 103.])).unwrap();
    s.replace_rows("a", DType::Float32, &[-1, 0], &f32s(&[7., 7., 9., 9.])).unwrap();
    let (_, all) = s.load("a").unwrap();
    let got: Vec<f32> = all.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(got, vec![9., 9., 4., 5., 8., 9., 10., 11., 12., 13., 14., 15., 16., 17., 18., 19., 100., 101., 7., 7.]);
    s.close().unwrap();
    let s = Store::open(&p, OpenOptions::default()).unwrap();
    let (_, again) = s.load("a").unwrap();
    assert_eq!(again, all);
    s.compact("a").unwrap();
    assert_eq!(s.info("a").unwrap().physical_rows, 10);
    drop(s);
    // no log records remain after drop's checkpoint
    assert_eq!(std::fs::metadata(p.join("numpack.wal")).unwrap().len(), 64);
}
