//! The committed C header must be what cbindgen generates from the source.
//! (Builds outside CI refresh include/wsembed.h; with CI set they do not,
//! so a stale committed header fails here.)

#[test]
fn committed_header_is_fresh() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/wsembed.h"));
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/wsembed.h");
    let committed = std::fs::read_to_string(committed_path).expect("include/wsembed.h exists");
    assert!(
        committed == generated,
        "include/wsembed.h is stale: run `cargo build` (without CI set) and commit it"
    );
}

#[test]
fn every_item_is_documented() {
    let header = include_str!(concat!(env!("OUT_DIR"), "/wsembed.h"));
    let lines: Vec<&str> = header.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let is_item = line.starts_with("#define WS")
            || (line.starts_with("typedef") && !line.contains("typedef enum"))
            || (line.contains("ws_") && line.ends_with(");") && !line.starts_with(' '));
        if is_item && !line.starts_with("#define WSEMBED") {
            let prev = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap();
            assert!(prev.trim_end().ends_with("*/"), "undocumented: {line}");
        }
    }
}
