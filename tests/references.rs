//! Every citation of the protocol reference in the code, tests, cost models and README names a
//! section that `docs/protocol-reference.md` has, and the measurements it points at ship with
//! the repository.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir)
        .expect("readable directory")
        .flatten()
    {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("rs" | "toml" | "md" | "sh")
        ) {
            out.push(p);
        }
    }
}

/// The section numbers the reference defines ("## 2." -> 2, "### 2.4" -> 2.4).
fn sections(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| {
            let num = l.trim_start_matches('#').split_whitespace().next()?;
            let num = num.trim_end_matches('.');
            num.chars()
                .all(|c| c.is_ascii_digit() || c == '.')
                .then(|| num.to_string())
        })
        .filter(|n| !n.is_empty())
        .collect()
}

#[test]
fn every_citation_names_a_section_that_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let reference =
        std::fs::read_to_string(root.join("docs/protocol-reference.md")).expect("the reference");
    let have = sections(&reference);
    for s in [
        "1", "2", "2.1", "2.2", "2.3", "2.4", "2.5", "3", "4", "4.1", "4.2", "4.3", "5",
    ] {
        assert!(have.iter().any(|h| h == s), "section {s} missing: {have:?}");
    }
    let mut all = Vec::new();
    for d in ["src", "tests", "cost-models", "benches", "tools"] {
        files(&root.join(d), &mut all);
    }
    all.push(root.join("README.md"));
    let key = "docs/protocol-reference.md";
    let mut cited = 0;
    for f in &all {
        let text = std::fs::read_to_string(f).expect("readable file");
        // Comment prefixes and line breaks between the name and the number do not matter.
        let flat: String = text
            .replace("///", " ")
            .replace("//!", " ")
            .replace("# ", " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = flat.as_str();
        while let Some(i) = rest.find(key) {
            rest = &rest[i + key.len()..];
            let after = rest
                .trim_start_matches([',', ' '])
                .trim_start_matches("section ");
            let num: String = after
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let num = num.trim_end_matches('.');
            if num.is_empty() || f.ends_with("references.rs") {
                continue;
            }
            cited += 1;
            assert!(
                have.iter().any(|h| h == num),
                "{}: cites section {num} of {key}, which has {have:?}",
                f.display()
            );
        }
    }
    assert!(cited >= 25, "only {cited} citations found");
}

#[test]
fn the_measurements_the_reference_cites_ship_with_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/measured");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("measured/README.md");
    for f in [
        "opencheetah-resnet50-conv.csv",
        "opencheetah-resnet50-bn-first4.csv",
    ] {
        assert!(readme.contains(f), "{f} not described");
        let csv = std::fs::read_to_string(root.join(f)).expect("the csv");
        assert!(csv.lines().count() > 4, "{f}");
    }
    // The 53 convolutions of ResNet-50, one row each after the header.
    let conv = std::fs::read_to_string(root.join("opencheetah-resnet50-conv.csv")).unwrap();
    assert_eq!(conv.lines().count(), 54);
}
