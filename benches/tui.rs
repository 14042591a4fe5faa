//! The explorer's per-key cost on ResNet-50 (protocol hequant) on a 160 x 50 TestBackend,
//! against the 16 ms frame budget, with the bare model evaluation and the bare render as
//! baselines measured in the same run.

use criterion::{Criterion, criterion_group, criterion_main};
use hequant::model::{self, EvalOptions};
use hequant::protocol::{CostModel, Protocol};
use hequant::tui::action::Action;
use hequant::tui::{App, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::hint::black_box;
use std::time::{Duration, Instant};

const BUDGET: Duration = Duration::from_millis(16);

fn resnet50() -> App {
    let cm = CostModel::builtin().expect("shipped cost models");
    let net = hequant::cli::load_network("networks/resnet50-imagenet.toml").expect("ResNet-50");
    let o = EvalOptions::new(Protocol::Hequant, &cm);
    App::new(net, cm, "resnet50-imagenet", o).expect("ResNet-50 evaluates")
}

/// Median wall time of `f` over `n` runs.
fn median(n: usize, mut f: impl FnMut()) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    v[n / 2]
}

fn bench(c: &mut Criterion) {
    let mut app = resnet50();
    let mut term = Terminal::new(TestBackend::new(160, 50)).expect("test backend");
    let mut up = true;
    // One key: a weight bit more or less on the selected layer (conv1, the largest
    // search), the model re-run, the detail search re-run, the screen drawn.
    let mut key = |app: &mut App, term: &mut Terminal<TestBackend>| {
        app.update(Action::WeightBits(if up { 1 } else { -1 }));
        up = !up;
        term.draw(|f| view::draw(f, app)).expect("draw");
    };
    c.bench_function("explore_key_update_render_resnet50_160x50", |b| {
        b.iter(|| key(&mut app, &mut term))
    });
    c.bench_function("baseline_evaluate_resnet50", |b| {
        b.iter(|| black_box(model::evaluate(&app.net, &app.opts, &app.cm).expect("evaluates")))
    });
    c.bench_function("baseline_render_resnet50_160x50", |b| {
        b.iter(|| {
            term.draw(|f| view::draw(f, &app))
                .map(|_| ())
                .expect("draw")
        })
    });

    let t_key = median(31, || key(&mut app, &mut term));
    let t_eval = median(31, || {
        black_box(model::evaluate(&app.net, &app.opts, &app.cm).expect("evaluates"));
    });
    let t_draw = median(31, || {
        term.draw(|f| view::draw(f, &app)).expect("draw");
    });
    // Down to the ReLU (no search) and back up to conv1 (its detail search).
    let t_move = median(31, || {
        app.update(Action::Down);
        app.update(Action::Up);
        term.draw(|f| view::draw(f, &app)).expect("draw");
    });
    // A link change also re-sweeps the chart (15 widths x 3 protocols + 2 baselines).
    let t_link = median(5, || {
        app.update(Action::CycleLink);
        term.draw(|f| view::draw(f, &app)).expect("draw");
    });
    // The same key as the terminal runs it: the sweep goes to a background thread.
    app.background = true;
    let t_link_bg = median(5, || {
        app.update(Action::CycleLink);
        term.draw(|f| view::draw(f, &app)).expect("draw");
    });
    app.update(Action::CancelJob);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let ratio = |d: Duration| d.as_secs_f64() / BUDGET.as_secs_f64();
    println!("explore on ResNet-50, 160x50, medians of this run:");
    println!(
        "  bit key (update + render): {:.2} ms = {:.2} x the 16 ms budget",
        ms(t_key),
        ratio(t_key)
    );
    println!(
        "  a full model::evaluate: {:.2} ms ({:.2} x budget); the render alone: {:.2} ms ({:.2} x budget)",
        ms(t_eval),
        ratio(t_eval),
        ms(t_draw),
        ratio(t_draw)
    );
    println!(
        "  down + up (the detail search of conv1, no model run): {:.2} ms = {:.2} x the 16 ms budget",
        ms(t_move),
        ratio(t_move)
    );
    println!(
        "  link key, chart re-swept inline: {:.2} ms = {:.2} x the 16 ms budget",
        ms(t_link),
        ratio(t_link)
    );
    println!(
        "  link key, chart re-swept in the background (as in the terminal): {:.2} ms = {:.2} x the 16 ms budget",
        ms(t_link_bg),
        ratio(t_link_bg)
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
