//! Generates include/wsembed.h with cbindgen.
//!
//! The header is committed. A normal build refreshes it; with `CI` set the
//! build leaves it alone, and tests/header.rs fails when it is stale.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=CI");

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    let version = |part: &str| env::var(format!("CARGO_PKG_VERSION_{part}")).expect("set by cargo");
    config.after_includes = Some(format!(
        "\n/* The version of this header; compare with ws_version() at run time. */\n\
         #define WSEMBED_VERSION_MAJOR {}\n#define WSEMBED_VERSION_MINOR {}\n\
         #define WSEMBED_VERSION_PATCH {}\n#define WSEMBED_VERSION \"{}\"\n",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH"),
        env::var("CARGO_PKG_VERSION").expect("set by cargo"),
    ));

    let generated = out_dir.join("wsembed.h");
    match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(bindings) => {
            bindings.write_to_file(&generated);
        }
        Err(e) => panic!("cbindgen failed: {e}"),
    }

    if env::var_os("CI").is_none() {
        let committed = crate_dir.join("include").join("wsembed.h");
        let new = fs::read(&generated).expect("just written");
        if fs::read(&committed).ok().as_deref() != Some(&new[..]) {
            fs::create_dir_all(committed.parent().expect("has a parent"))
                .expect("include/ can be created");
            fs::write(&committed, new).expect("include/wsembed.h is writable");
        }
    }
}
