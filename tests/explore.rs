//! `hequant explore` end to end: the report on a pipe, and the real binary in a
//! pseudo-terminal (tmux) driven by key presses.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hequant");

fn stdout(args: &[&str]) -> String {
    let o = Command::new(BIN).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn no_tui_and_pipe_print_the_estimate_report() {
    let common = ["-n", "resnet18-cifar100", "--bits", "w4a4", "--link", "wan"];
    let estimate = stdout(&[&["estimate"][..], &common].concat());
    let no_tui = stdout(&[&["explore", "--no-tui"][..], &common].concat());
    // Standard output is a pipe here, so explore prints without --no-tui too.
    let piped = stdout(&[&["explore"][..], &common].concat());
    assert!(estimate.contains("total:"), "{estimate}");
    assert_eq!(no_tui, estimate);
    assert_eq!(piped, estimate);
}

#[test]
fn explore_reports_bad_arguments() {
    let o = Command::new(BIN)
        .args(["explore", "--no-tui", "--protocol", "nope"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown protocol 'nope'"));
}

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap()
    }
    fn pane(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "e2e"]).stdout).into()
    }
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.run(&["send-keys", "-t", "e2e", k]);
        }
    }
    /// Waits until the pane shows `text`; fails with the pane after 30 s.
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let p = self.pane();
            if p.contains(text) {
                return p;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the screen never showed {text:?}; it shows:\n{p}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn explore_in_a_terminal() {
    // Without tmux this test fails (CI installs it, `.ci/run`); a machine without tmux can
    // leave it out explicitly with HEQUANT_SKIP_TMUX=1, and the skip is printed.
    if Command::new("tmux").arg("-V").output().is_err() {
        if std::env::var("HEQUANT_SKIP_TMUX").as_deref() == Ok("1") {
            eprintln!("SKIPPED explore_in_a_terminal: tmux is not installed (HEQUANT_SKIP_TMUX=1)");
            return;
        }
        panic!(
            "explore_in_a_terminal needs tmux (apt-get install tmux), or HEQUANT_SKIP_TMUX=1 to leave it out"
        );
    }
    let dir: PathBuf = std::env::temp_dir().join(format!("hequant-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let save = dir.join("m.toml");
    let tmux = Tmux {
        socket: format!("hequant-e2e-{}", std::process::id()),
    };
    let cmd = format!(
        "{BIN} explore -n resnet18-cifar100 --bits w4a4 --save {}; echo EXIT=$?; echo TTY=$(stty -a | grep -o -- '-\\?icanon' | head -1); sleep 30",
        save.display()
    );
    let o = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "100",
        "-y",
        "30",
        &cmd,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // ResNet-18 CIFAR-100: 20 convs + 1 fc + 17 ReLUs + 1 pool, and the 3 additions that
    // extend a downsample's narrower ring.
    let first = tmux.wait_for("layers (42 with a cost)");
    assert!(first.contains("resnet18-cifar100 | hequant"), "{first}");
    tmux.keys(&["?"]);
    tmux.wait_for("keys (any key closes)");
    tmux.keys(&["?"]);
    // The first layer stays w8a8 under --bits w4a4; one weight bit more.
    tmux.keys(&["l"]);
    tmux.wait_for("conv1: w8a8 -> w9a8");
    // A layer without weights: nothing changes, the status line says why.
    tmux.keys(&["j", "l"]);
    tmux.wait_for("relu has no weights");
    tmux.keys(&["w"]);
    tmux.wait_for("saved the mapping");
    let text = std::fs::read_to_string(&save).unwrap();
    assert!(text.contains("hequant-mapping"), "{text}");
    tmux.keys(&["q"]);
    tmux.wait_for("EXIT=0");
    let after = tmux.wait_for("TTY=");
    // The alternate screen is gone: the shell's screen is back.
    assert!(!after.contains("layers ("), "{after}");
    // Raw mode is off: the terminal is canonical again (`icanon`, not `-icanon`).
    assert!(after.contains("TTY=icanon"), "{after}");
    std::fs::remove_dir_all(&dir).unwrap();
}
