//! A saved mapping brings its network and protocol to `estimate`, `explore --no-tui` and
//! `verify`, wherever the command runs from.

use std::process::Command;

fn hequant(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hequant"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run hequant")
}

#[test]
fn a_mapping_names_its_network_from_any_directory() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = std::env::temp_dir().join(format!("hequant-mapping-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let saved = tmp.join("minionn.toml");
    // Saved from the repository with a relative network path, as the README writes it.
    let o = hequant(
        root,
        &[
            "search",
            "--network",
            "networks/minionn-cifar10.toml",
            "-p",
            "hequant",
            "--bits",
            "w4a4",
            "--save",
            saved.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&saved).expect("saved mapping");
    assert!(
        text.contains("network = \"networks/minionn-cifar10.toml\""),
        "{text}"
    );
    let total = |o: &std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|l| l.starts_with("total:"))
            .map(str::to_string)
            .expect("a total line")
    };
    // The same total from the repository with the network given, and from elsewhere with
    // only the mapping (the default --network and --protocol are replaced).
    let want = total(&hequant(
        root,
        &[
            "estimate",
            "-n",
            "minionn-cifar10",
            "-p",
            "hequant",
            "--bits",
            "w4a4",
        ],
    ));
    let m = saved.to_str().unwrap();
    let got = total(&hequant(
        &tmp,
        &["estimate", "--mapping", m, "--bits", "w4a4"],
    ));
    assert_eq!(got, want);
    let o = hequant(
        &tmp,
        &["explore", "--mapping", m, "--bits", "w4a4", "--no-tui"],
    );
    assert_eq!(total(&o), want);
    // The header names the protocol whole (`hequant`, not `hequant-packed`).
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.split(" | ").next() == Some("minionn-cifar10 under hequant")),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = hequant(
        &tmp,
        &[
            "verify",
            "--mapping",
            m,
            "--bits",
            "w4a4",
            "--part",
            "linear",
            "--layers",
            "conv7",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A mapping whose network exists nowhere is an error naming the mapping file.
    let broken = tmp.join("broken.toml");
    std::fs::write(
        &broken,
        text.replace("networks/minionn-cifar10.toml", "nowhere/x.toml"),
    )
    .expect("write");
    let o = hequant(&tmp, &["estimate", "--mapping", broken.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("broken.toml") && err.contains("nowhere/x.toml"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
