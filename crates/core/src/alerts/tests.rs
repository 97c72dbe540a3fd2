use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0)
        .single()
        .expect("valid date")
}

fn at(s: f64) -> DateTime<Utc> {
    t0() + chrono::Duration::milliseconds((s * 1000.0) as i64)
}

fn rules(repeat_s: u64, keep_s: u64) -> Rules {
    Rules {
        repeat_interval: Duration::from_secs(repeat_s),
        keep_firing_for: Duration::from_secs(keep_s),
        window: Duration::from_secs(60),
        ..Rules::default()
    }
}

fn m(alert: Alert, value: Option<f64>, threshold: f64) -> Measure {
    Measure {
        alert,
        value,
        threshold,
        summary: format!("{alert} is {value:?}"),
    }
}

fn lat(v: f64) -> Measure {
    m(Alert::Latency, Some(v), 60_000.0)
}

fn kinds(n: &[Notification]) -> Vec<(Alert, Transition)> {
    n.iter().map(|n| (n.alert, n.transition)).collect()
}

#[test]
fn fires_once_repeats_at_the_interval_and_resolves() {
    let mut e = Evaluator::new(rules(60, 0), &[Alert::Latency]);
    let fire = e.step(at(0.0), &[lat(70_000.0)]);
    assert_eq!(kinds(&fire), vec![(Alert::Latency, Transition::Fire)]);
    assert_eq!(fire[0].starts_at, at(0.0));
    assert!(e.is_firing(Alert::Latency));
    // Holding, before the repeat interval: silent.
    for s in [10.0, 30.0, 59.9] {
        assert!(e.step(at(s), &[lat(80_000.0)]).is_empty(), "at {s}s");
    }
    let rep = e.step(at(60.0), &[lat(90_000.0)]);
    assert_eq!(kinds(&rep), vec![(Alert::Latency, Transition::Repeat)]);
    assert_eq!(rep[0].starts_at, at(0.0), "a repeat keeps the start");
    assert_eq!(rep[0].value, Some(90_000.0), "with the current value");
    // The next repeat counts from the last notification.
    assert!(e.step(at(119.0), &[lat(90_000.0)]).is_empty());
    assert_eq!(
        kinds(&e.step(at(120.0), &[lat(90_000.0)])),
        vec![(Alert::Latency, Transition::Repeat)]
    );
    let res = e.step(at(125.0), &[lat(1_000.0)]);
    assert_eq!(kinds(&res), vec![(Alert::Latency, Transition::Resolve)]);
    assert_eq!(res[0].starts_at, at(0.0));
    assert_eq!(res[0].at, at(125.0));
    assert_eq!(res[0].value, Some(1_000.0), "the value that cleared it");
    assert!(!e.is_firing(Alert::Latency));
    assert!(e.active().is_empty());
    // Clear stays silent; holding again is a new alert.
    assert!(e.step(at(130.0), &[lat(1_000.0)]).is_empty());
    let again = e.step(at(140.0), &[lat(61_000.0)]);
    assert_eq!(kinds(&again), vec![(Alert::Latency, Transition::Fire)]);
    assert_eq!(again[0].starts_at, at(140.0));
}

#[test]
fn a_value_at_the_threshold_does_not_alert() {
    let mut e = Evaluator::new(rules(60, 0), &Alert::ALL);
    let at_threshold = [
        lat(60_000.0),
        m(Alert::CheckpointFailures, Some(0.1), 0.1),
        m(Alert::Load, Some(0.8), 0.8),
        m(Alert::Backpressure, Some(0.8), 0.8),
        m(Alert::DeadLetters, Some(0.0), 0.0),
    ];
    assert!(e.step(at(0.0), &at_threshold).is_empty());
    let above = [
        lat(60_000.001),
        m(Alert::CheckpointFailures, Some(0.1000001), 0.1),
        m(Alert::Load, Some(0.8000001), 0.8),
        m(Alert::Backpressure, Some(0.81), 0.8),
        m(Alert::DeadLetters, Some(1.0), 0.0),
    ];
    let n = e.step(at(1.0), &above);
    assert_eq!(n.len(), 5, "{n:?}");
    assert!(n.iter().all(|n| n.transition == Transition::Fire));
    // Back at the threshold exactly: clear again.
    let n = e.step(at(2.0), &at_threshold);
    assert_eq!(n.len(), 5);
    assert!(n.iter().all(|n| n.transition == Transition::Resolve));
}

#[test]
fn no_data_does_not_hold_and_resolves_a_firing_alert() {
    let mut e = Evaluator::new(rules(60, 0), &[Alert::Latency]);
    assert!(e.step(at(0.0), &[m(Alert::Latency, None, 1.0)]).is_empty());
    assert_eq!(e.step(at(1.0), &[lat(70_000.0)]).len(), 1);
    let n = e.step(at(2.0), &[m(Alert::Latency, None, 60_000.0)]);
    assert_eq!(kinds(&n), vec![(Alert::Latency, Transition::Resolve)]);
    assert_eq!(n[0].value, None);
    // NaN is not above anything.
    assert!(e.step(at(3.0), &[lat(f64::NAN)]).is_empty());
}

#[test]
fn flapping_within_keep_firing_for_neither_resolves_nor_refires() {
    let mut e = Evaluator::new(rules(3600, 30), &[Alert::Load]);
    let hi = || m(Alert::Load, Some(0.95), 0.8);
    let lo = || m(Alert::Load, Some(0.2), 0.8);
    let mut all = Vec::new();
    for i in 0..20 {
        let s = f64::from(i) * 10.0;
        let v = if i % 2 == 0 { hi() } else { lo() };
        all.extend(e.step(at(s), &[v]));
    }
    assert_eq!(kinds(&all), vec![(Alert::Load, Transition::Fire)]);
    let a = e.active();
    assert_eq!(a.len(), 1);
    assert!(a[0].resolving, "the last value was clear: {a:?}");
    assert_eq!(a[0].value, Some(0.2));
    // Clear for 30 s from the first clear evaluation (190 s): resolves at 220 s, not before.
    assert!(e.step(at(210.0), &[lo()]).is_empty());
    assert_eq!(
        kinds(&e.step(at(220.0), &[lo()])),
        vec![(Alert::Load, Transition::Resolve)]
    );
}

#[test]
fn flapping_without_keep_firing_for_fires_and_resolves_each_time() {
    let mut e = Evaluator::new(rules(3600, 0), &[Alert::Load]);
    let mut all = Vec::new();
    for i in 0..6 {
        let v = if i % 2 == 0 { 0.9 } else { 0.1 };
        all.extend(e.step(at(f64::from(i)), &[m(Alert::Load, Some(v), 0.8)]));
    }
    let t: Vec<Transition> = all.iter().map(|n| n.transition).collect();
    use Transition::*;
    assert_eq!(t, vec![Fire, Resolve, Fire, Resolve, Fire, Resolve]);
}

#[test]
fn holding_again_while_resolving_cancels_the_resolution_and_repeats_continue() {
    let mut e = Evaluator::new(rules(60, 30), &[Alert::Latency]);
    e.step(at(0.0), &[lat(70_000.0)]);
    assert!(e.step(at(20.0), &[lat(1.0)]).is_empty());
    assert!(e.active()[0].resolving);
    assert!(e.step(at(45.0), &[lat(70_000.0)]).is_empty());
    assert!(!e.active()[0].resolving);
    // The clear period starts afresh: 30 s from 50 s.
    assert!(e.step(at(50.0), &[lat(1.0)]).is_empty());
    assert!(e.step(at(79.0), &[lat(1.0)]).is_empty());
    assert_eq!(
        kinds(&e.step(at(80.0), &[lat(1.0)])),
        vec![(Alert::Latency, Transition::Resolve)]
    );
}

#[test]
fn no_repeat_while_clear_but_not_yet_resolved() {
    let mut e = Evaluator::new(rules(10, 60), &[Alert::Latency]);
    e.step(at(0.0), &[lat(70_000.0)]);
    for s in 1..59 {
        assert!(e.step(at(f64::from(s)), &[lat(1.0)]).is_empty(), "at {s}s");
    }
}

#[test]
fn disabled_rules_never_fire() {
    let r = Rules {
        enabled: false,
        ..rules(0, 0)
    };
    let mut e = Evaluator::new(r, &Alert::ALL);
    let snap = Snapshot {
        latency_ms: Some(1e12),
        dead_letters: Some(1_000),
        queue_fill: Some(1.0),
        ..Default::default()
    };
    for s in 0..10 {
        assert!(e.evaluate(at(f64::from(s)), snap.clone()).is_empty());
        assert!(e.step(at(f64::from(s)), &[lat(1e12)]).is_empty());
    }
    assert!(e.active().is_empty());
}

#[test]
fn rules_the_service_does_not_evaluate_are_ignored() {
    let mut e = Evaluator::new(rules(60, 0), &[Alert::Latency, Alert::Load]);
    assert_eq!(e.alerts(), &[Alert::Latency, Alert::Load]);
    let n = e.step(at(0.0), &[m(Alert::DeadLetters, Some(5.0), 0.0)]);
    assert!(n.is_empty());
    let n = e.evaluate(
        at(1.0),
        Snapshot {
            dead_letters: Some(5),
            ..Default::default()
        },
    );
    assert!(n.is_empty());
}

#[test]
fn independent_alerts_keep_independent_state() {
    let mut e = Evaluator::new(rules(60, 0), &Alert::ALL);
    let n = e.step(
        at(0.0),
        &[lat(70_000.0), m(Alert::DeadLetters, Some(3.0), 0.0)],
    );
    assert_eq!(n.len(), 2);
    let n = e.step(
        at(1.0),
        &[lat(70_000.0), m(Alert::DeadLetters, Some(0.0), 0.0)],
    );
    assert_eq!(kinds(&n), vec![(Alert::DeadLetters, Transition::Resolve)]);
    assert!(e.is_firing(Alert::Latency));
    let active: Vec<Alert> = e.active().iter().map(|a| a.alert).collect();
    assert_eq!(active, vec![Alert::Latency]);
}

#[test]
fn a_clock_going_backwards_neither_panics_nor_repeats() {
    let mut e = Evaluator::new(rules(60, 0), &[Alert::Latency]);
    e.step(at(100.0), &[lat(70_000.0)]);
    assert!(e.step(at(10.0), &[lat(70_000.0)]).is_empty());
    assert!(e
        .evaluate(
            at(5.0),
            Snapshot {
                latency_ms: Some(70_000.0),
                ..Default::default()
            }
        )
        .is_empty());
}

// --- measurement over the window -------------------------------------------------------

fn eval_rules(window_s: u64) -> Rules {
    Rules {
        window: Duration::from_secs(window_s),
        repeat_interval: Duration::from_secs(3600),
        keep_firing_for: Duration::ZERO,
        ..Rules::default()
    }
}

#[test]
fn dead_letters_fire_while_growing_and_resolve_a_window_after_the_last() {
    let mut e = Evaluator::new(eval_rules(60), &[Alert::DeadLetters]);
    let dl = |n| Snapshot {
        dead_letters: Some(n),
        ..Default::default()
    };
    assert!(e.evaluate(at(0.0), dl(0)).is_empty());
    assert!(e.evaluate(at(10.0), dl(0)).is_empty());
    let n = e.evaluate(at(20.0), dl(2));
    assert_eq!(kinds(&n), vec![(Alert::DeadLetters, Transition::Fire)]);
    assert_eq!(n[0].value, Some(2.0));
    assert!(n[0]
        .summary
        .contains("2 records went to the dead letters in the last 1m"));
    // No new dead letters: still within the window of the growth until the baseline
    // passes the sample at 20 s.
    for s in [30.0, 50.0, 79.0] {
        assert!(e.evaluate(at(s), dl(2)).is_empty(), "at {s}");
        assert!(e.is_firing(Alert::DeadLetters), "at {s}");
    }
    let n = e.evaluate(at(80.0), dl(2));
    assert_eq!(kinds(&n), vec![(Alert::DeadLetters, Transition::Resolve)]);
}

#[test]
fn checkpoint_failure_rate_counts_only_the_window() {
    let mut e = Evaluator::new(eval_rules(60), &[Alert::CheckpointFailures]);
    let cp = |ok, failed| Snapshot {
        checkpoints_ok: Some(ok),
        checkpoints_failed: Some(failed),
        ..Default::default()
    };
    assert!(e.evaluate(at(0.0), cp(0, 0)).is_empty());
    // 1 failed of 10 = 10 %: at the threshold, no alert.
    assert!(e.evaluate(at(10.0), cp(9, 1)).is_empty());
    // 3 failed of 12 = 25 %.
    let n = e.evaluate(at(20.0), cp(9, 3));
    assert_eq!(
        kinds(&n),
        vec![(Alert::CheckpointFailures, Transition::Fire)]
    );
    assert!((n[0].value.unwrap() - 0.25).abs() < 1e-9);
    assert!(
        n[0].summary.contains("3 of 12 checkpoint attempts failed"),
        "{}",
        n[0].summary
    );
    // Later the failures are out of the window and 100 checkpoints committed: clear.
    let n = e.evaluate(at(90.0), cp(109, 3));
    assert_eq!(
        kinds(&n),
        vec![(Alert::CheckpointFailures, Transition::Resolve)]
    );
}

#[test]
fn no_checkpoint_attempted_is_no_data() {
    let r = eval_rules(60);
    let s = Snapshot {
        checkpoints_ok: Some(5),
        checkpoints_failed: Some(5),
        ..Default::default()
    };
    let ms = measure(
        &r,
        &[Alert::CheckpointFailures],
        (at(0.0), &s),
        (at(10.0), &s),
    );
    assert_eq!(ms[0].value, None);
    assert!(!ms[0].holds());
}

#[test]
fn load_is_cpu_time_over_wall_time_over_cpus() {
    let r = eval_rules(60);
    let s0 = Snapshot {
        cpu_seconds: Some(100.0),
        cpus: Some(2.0),
        ..Default::default()
    };
    let s1 = Snapshot {
        cpu_seconds: Some(117.0),
        ..s0.clone()
    };
    let ms = measure(&r, &[Alert::Load], (at(0.0), &s0), (at(10.0), &s1));
    assert!((ms[0].value.unwrap() - 0.85).abs() < 1e-9, "{:?}", ms[0]);
    assert!(ms[0].holds());
    assert!(
        ms[0].summary.contains("85.0 % of 2 CPU(s)"),
        "{}",
        ms[0].summary
    );
    // One sample only: not measured.
    let ms = measure(&r, &[Alert::Load], (at(0.0), &s0), (at(0.0), &s0));
    assert_eq!(ms[0].value, None);
}

#[test]
fn backpressure_is_the_queue_fill_or_the_share_of_arrivals_piling_up() {
    let r = eval_rules(60);
    let s = |lag, handled, fill| Snapshot {
        consumer_lag: Some(lag),
        records_handled: Some(handled),
        queue_fill: fill,
        ..Default::default()
    };
    let v = |b: Snapshot, n: Snapshot| {
        measure(&r, &[Alert::Backpressure], (at(0.0), &b), (at(30.0), &n))[0]
            .value
            .unwrap()
    };
    // Nothing handled while 1000 arrived: everything piles up.
    assert_eq!(v(s(0, 0, None), s(1000, 0, None)), 1.0);
    // 100 piled up, 900 handled: 10 %.
    assert!((v(s(0, 0, None), s(100, 900, None)) - 0.1).abs() < 1e-9);
    // Lag shrinking: no backpressure from lag.
    assert_eq!(v(s(500, 0, None), s(100, 900, None)), 0.0);
    // A full queue wins over a steady lag.
    assert_eq!(v(s(0, 0, None), s(0, 900, Some(0.9))), 0.9);
    assert_eq!(v(s(0, 0, None), s(0, 900, Some(7.0))), 1.0, "clamped");
    // Queue fill alone (no lag numbers).
    let q = Snapshot {
        queue_fill: Some(0.5),
        ..Default::default()
    };
    assert_eq!(v(Snapshot::default(), q), 0.5);
    let none = measure(
        &r,
        &[Alert::Backpressure],
        (at(0.0), &Snapshot::default()),
        (at(1.0), &Snapshot::default()),
    );
    assert_eq!(none[0].value, None);
}

fn hist(counts: &[(f64, u64)]) -> Vec<(f64, u64)> {
    counts.to_vec()
}

#[test]
fn latency_is_the_p99_of_rows_committed_in_the_window() {
    let mut e = Evaluator::new(
        Rules {
            latency_threshold_ms: 2_000.0,
            ..eval_rules(30)
        },
        &[Alert::Latency],
    );
    let h = |fast, slow| Snapshot {
        latency_histogram: Some(hist(&[
            (1_000.0, fast),
            (5_000.0, fast + slow),
            (f64::INFINITY, fast + slow),
        ])),
        ..Default::default()
    };
    assert!(e.evaluate(at(0.0), h(100, 0)).is_empty());
    // 100 slow rows among 100 fast ones since the baseline: p99 in (1 s, 5 s].
    let n = e.evaluate(at(10.0), h(200, 100));
    assert_eq!(kinds(&n), vec![(Alert::Latency, Transition::Fire)]);
    let v = n[0].value.unwrap();
    assert!(v > 2_000.0 && v <= 5_000.0, "{v}");
    assert!(
        n[0].summary.contains("p99 end-to-end latency"),
        "{}",
        n[0].summary
    );
    // Only fast rows since then, but the slow ones are still in the window.
    assert!(e.evaluate(at(30.0), h(300, 100)).is_empty());
    assert!(e.is_firing(Alert::Latency));
    // At 41 s the baseline is the sample at 10 s: only fast rows after it.
    let n = e.evaluate(at(41.0), h(400, 100));
    assert_eq!(kinds(&n), vec![(Alert::Latency, Transition::Resolve)]);
    assert!(n[0].value.unwrap() <= 1_000.0);
    // Nothing committed in the window: no data, no alert.
    let n = e.evaluate(at(100.0), h(400, 100));
    assert!(n.is_empty());
}

#[test]
fn latency_gauge_when_there_is_no_histogram() {
    let r = Rules {
        latency_threshold_ms: 60_000.0,
        ..eval_rules(60)
    };
    let s = Snapshot {
        latency_ms: Some(61_000.0),
        ..Default::default()
    };
    let ms = measure(&r, &[Alert::Latency], (at(0.0), &s), (at(0.0), &s));
    assert!(ms[0].holds());
    assert!(ms[0].summary.contains("newest change"), "{}", ms[0].summary);
}

#[test]
fn histogram_quantiles_interpolate_like_prometheus() {
    assert_eq!(histogram_quantile(0.5, &[]), None);
    assert_eq!(
        histogram_quantile(0.5, &[(1.0, 0), (f64::INFINITY, 0)]),
        None
    );
    let h = [(10.0, 50), (20.0, 100), (f64::INFINITY, 100)];
    assert_eq!(histogram_quantile(0.5, &h), Some(10.0));
    assert_eq!(histogram_quantile(0.75, &h), Some(15.0));
    assert_eq!(histogram_quantile(0.25, &h), Some(5.0));
    // Samples beyond the last finite bound: the last finite bound.
    let h = [(10.0, 0), (20.0, 0), (f64::INFINITY, 10)];
    assert_eq!(histogram_quantile(0.99, &h), Some(20.0));
    // Empty buckets between are skipped.
    let h = [(10.0, 0), (20.0, 0), (40.0, 4), (f64::INFINITY, 4)];
    assert_eq!(histogram_quantile(0.5, &h), Some(30.0));
}

#[test]
fn the_history_stays_bounded() {
    let mut e = Evaluator::new(
        Rules {
            window: Duration::from_secs(10),
            ..Rules::default()
        },
        &Alert::ALL,
    );
    for i in 0..20_000 {
        e.evaluate(
            at(f64::from(i) * 0.001),
            Snapshot {
                dead_letters: Some(0),
                ..Default::default()
            },
        );
    }
    assert!(
        e.history.len() <= HISTORY as usize + 2,
        "{}",
        e.history.len()
    );
}

#[test]
fn notification_json_for_the_webhook() {
    let n = Notification {
        transition: Transition::Resolve,
        alert: Alert::CheckpointFailures,
        value: Some(0.0),
        threshold: 0.1,
        summary: "0 of 5 checkpoint attempts failed".into(),
        starts_at: at(0.0),
        at: at(90.0),
    };
    let v = n.to_json("stream-worker", "host-1");
    assert_eq!(v["alert"], "checkpoint_failures");
    assert_eq!(v["severity"], "high");
    assert_eq!(v["status"], "resolved");
    assert_eq!(v["event"], "resolve");
    assert_eq!(v["service"], "stream-worker");
    assert_eq!(v["instance"], "host-1");
    assert_eq!(v["startsAt"], "2026-11-24T12:00:00Z");
    assert_eq!(v["endsAt"], "2026-11-24T12:01:30Z");
    assert_eq!(v["threshold"], 0.1);
    assert!(v["text"]
        .as_str()
        .unwrap()
        .starts_with("[RESOLVED] rtdp stream-worker on host-1: checkpoint_failures (high)"));
    let firing = Notification {
        transition: Transition::Repeat,
        ..n
    }
    .to_json("c", "h");
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["event"], "repeat");
    assert_eq!(firing["endsAt"], Value::Null);
}

#[test]
fn active_alerts_json_for_status() {
    let mut e = Evaluator::new(rules(60, 0), &[Alert::Latency]);
    e.step(at(0.0), &[lat(70_000.0)]);
    let v = serde_json::to_value(e.active()).unwrap();
    assert_eq!(v[0]["alert"], "latency");
    assert_eq!(v[0]["severity"], "high");
    assert_eq!(v[0]["value"], 70_000.0);
    assert_eq!(v[0]["threshold"], 60_000.0);
    assert_eq!(v[0]["since"], "2026-11-24T12:00:00Z");
    assert_eq!(v[0]["resolving"], false);
    assert!(v[0]["message"].is_string());
}

#[test]
fn durations_for_people() {
    assert_eq!(human(Duration::from_millis(250)), "250ms");
    assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    assert_eq!(human(Duration::from_secs(10)), "10s");
    assert_eq!(human(Duration::from_secs(300)), "5m");
    assert_eq!(human(Duration::from_secs(5400)), "1h30m");
    assert_eq!(human(Duration::from_secs(3601)), "1h1s");
    assert_eq!(human(Duration::ZERO), "0ms");
}

#[test]
fn rules_from_the_default_configuration() {
    let r = Rules::default();
    assert!(r.enabled);
    assert_eq!(r.threshold(Alert::Latency), 60_000.0);
    assert_eq!(r.threshold(Alert::CheckpointFailures), 0.1);
    assert_eq!(r.threshold(Alert::Load), 0.8);
    assert_eq!(r.threshold(Alert::Backpressure), 0.8);
    assert_eq!(r.threshold(Alert::DeadLetters), 0.0);
    assert_eq!(Alert::Load.severity(), Severity::Medium);
    assert_eq!(Alert::DeadLetters.severity(), Severity::Low);
}

proptest! {
    /// Whatever the sequence of values and gaps: per alert the notifications read
    /// Fire (Repeat)* Resolve, Fire …; repeats are at least the repeat interval apart;
    /// a resolve comes only after the rule was clear for keepFiringFor; the alert is
    /// active exactly between a fire and its resolve.
    #[test]
    fn notifications_follow_the_life_cycle(
        steps in proptest::collection::vec((0u32..40_000, any::<bool>()), 1..200),
        repeat_ms in 0u64..30_000,
        keep_ms in 0u64..30_000,
    ) {
        let r = Rules {
            repeat_interval: Duration::from_millis(repeat_ms),
            keep_firing_for: Duration::from_millis(keep_ms),
            ..Rules::default()
        };
        let mut e = Evaluator::new(r, &[Alert::Latency]);
        let mut now = t0();
        let mut firing = false;
        let mut last_sent: Option<DateTime<Utc>> = None;
        let mut clear_since: Option<DateTime<Utc>> = None;
        for (gap, holds) in steps {
            now += chrono::Duration::milliseconds(i64::from(gap));
            let v = if holds { 70_000.0 } else { 10.0 };
            let out = e.step(now, &[lat(v)]);
            prop_assert!(out.len() <= 1);
            if holds {
                clear_since = None;
            } else if firing {
                clear_since.get_or_insert(now);
            }
            match out.first().map(|n| n.transition) {
                Some(Transition::Fire) => {
                    prop_assert!(!firing && holds);
                    firing = true;
                    last_sent = Some(now);
                }
                Some(Transition::Repeat) => {
                    prop_assert!(firing && holds);
                    let gap = (now - last_sent.unwrap()).to_std().unwrap();
                    prop_assert!(gap >= Duration::from_millis(repeat_ms));
                    last_sent = Some(now);
                }
                Some(Transition::Resolve) => {
                    prop_assert!(firing && !holds);
                    let clear = (now - clear_since.unwrap()).to_std().unwrap();
                    prop_assert!(clear >= Duration::from_millis(keep_ms));
                    firing = false;
                    clear_since = None;
                }
                None => {
                    // Nothing sent although due would be a missed notification.
                    if holds && !firing {
                        prop_assert!(false, "held without firing");
                    }
                    if holds && firing {
                        let gap = (now - last_sent.unwrap()).to_std().unwrap();
                        prop_assert!(gap < Duration::from_millis(repeat_ms));
                    }
                    if !holds && firing {
                        let clear = (now - clear_since.unwrap()).to_std().unwrap();
                        prop_assert!(clear < Duration::from_millis(keep_ms));
                    }
                }
            }
            prop_assert_eq!(e.is_firing(Alert::Latency), firing);
        }
    }
}

// --- configuration ---------------------------------------------------------------------

fn load_env(
    vars: &[(&str, &str)],
) -> Result<crate::config::PipelineConfig, crate::config::ConfigErrors> {
    let env = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    crate::config::load_and_validate(None, &env, crate::config::Service::Worker)
}

#[test]
fn alert_keys_load_from_the_environment() {
    let c = load_env(&[
        ("PIPELINE_MONITORING_ALERTS_ENABLED", "false"),
        (
            "PIPELINE_MONITORING_ALERTS_WEBHOOK",
            "https://hooks.example.com/T/B/tok-77",
        ),
        ("PIPELINE_MONITORING_ALERTS_EVALUATION_INTERVAL_MS", "500"),
        ("PIPELINE_MONITORING_ALERTS_WINDOW_MS", "5000"),
        ("PIPELINE_MONITORING_ALERTS_REPEAT_INTERVAL_MS", "2000"),
        ("PIPELINE_MONITORING_ALERTS_KEEP_FIRING_FOR_MS", "0"),
    ])
    .unwrap();
    let a = &c.monitoring.alerts;
    assert!(!a.enabled);
    assert_eq!(a.webhook.expose(), "https://hooks.example.com/T/B/tok-77");
    assert_eq!(
        (
            a.evaluation_interval_ms,
            a.window_ms,
            a.repeat_interval_ms,
            a.keep_firing_for_ms
        ),
        (500, 5000, 2000, 0)
    );
    let r = Rules::from_config(a);
    assert_eq!(r.window, Duration::from_secs(5));
    assert_eq!(r.keep_firing_for, Duration::ZERO);
    // The webhook is a secret: not in Debug, not in the redacted dump.
    assert!(!format!("{c:?}").contains("tok-77"));
    let dump = serde_json::to_string(&c).unwrap();
    assert!(!dump.contains("tok-77"), "{dump}");
    assert!(dump.contains(r#""webhook":"***""#), "{dump}");
    let keys = crate::config::known_keys();
    let hook = keys
        .iter()
        .find(|k| k.path == "monitoring.alerts.webhook")
        .unwrap();
    assert!(hook.secret);
}

#[test]
fn alert_timing_and_webhook_are_validated_with_clear_messages() {
    let e = load_env(&[
        ("PIPELINE_MONITORING_ALERTS_EVALUATION_INTERVAL_MS", "50"),
        ("PIPELINE_MONITORING_ALERTS_WINDOW_MS", "10"),
        ("PIPELINE_MONITORING_ALERTS_REPEAT_INTERVAL_MS", "20"),
        ("PIPELINE_MONITORING_ALERTS_KEEP_FIRING_FOR_MS", "90000000"),
        (
            "PIPELINE_MONITORING_ALERTS_WEBHOOK",
            "ftp://hooks.example.com/tok-88",
        ),
    ])
    .unwrap_err();
    let text = e.to_string();
    for (key, says) in [
        (
            "monitoring.alerts.evaluationIntervalMs",
            "between 100 and 3600000 (got 50)",
        ),
        (
            "monitoring.alerts.windowMs",
            "between monitoring.alerts.evaluationIntervalMs (50 ms) and 86400000 (got 10)",
        ),
        (
            "monitoring.alerts.repeatIntervalMs",
            "at least monitoring.alerts.evaluationIntervalMs (50 ms) (got 20)",
        ),
        (
            "monitoring.alerts.keepFiringForMs",
            "between 0 and 86400000",
        ),
        (
            "monitoring.alerts.webhook",
            "must be an http:// or https:// URL",
        ),
    ] {
        assert!(
            e.for_key(key).any(|x| x.rule.contains(says)),
            "{key}: {says:?} not in\n{text}"
        );
    }
    assert!(!text.contains("tok-88"), "the webhook URL leaked: {text}");
    // The defaults are valid.
    load_env(&[]).unwrap();
}

#[test]
fn alert_metrics_and_rules_are_documented_in_docs_metrics_md() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/METRICS.md"
    ))
    .unwrap();
    for name in ALL_METRICS
        .iter()
        .chain([&crate::health::PROCESS_CPU_SECONDS_TOTAL])
    {
        assert!(
            doc.contains(&format!("`{name}`")),
            "{name} is not in docs/METRICS.md"
        );
    }
    for r in NOTIFICATION_RESULTS {
        assert!(doc.contains(&format!("`{r}`")), "result {r} undocumented");
    }
    let alerts = &doc[doc.find("## Alerts").expect("an Alerts section")..];
    for a in Alert::ALL {
        assert!(
            alerts.contains(&format!("| `{}` |", a.as_str())),
            "alert {a} is not in the Alerts table"
        );
    }
    // Registered families carry those names.
    let reg = prometheus::Registry::new();
    AlertMetrics::register(&reg, &Alert::ALL).unwrap();
    let names: Vec<String> = reg.gather().iter().map(|f| f.name().to_owned()).collect();
    assert_eq!(names.len(), ALL_METRICS.len());
    for n in names {
        assert!(ALL_METRICS.contains(&n.as_str()), "{n}");
    }
}

#[test]
fn the_task_evaluates_updates_status_and_metrics_and_stops_when_disabled() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let cfg = AlertsConfig {
        evaluation_interval_ms: 100,
        window_ms: 100,
        keep_firing_for_ms: 0,
        ..AlertsConfig::default()
    };
    let health = crate::health::Health::new("svc");
    let latency = std::sync::Arc::new(std::sync::Mutex::new(120_000.0));
    let l = latency.clone();
    spawn(
        rt.handle(),
        &health,
        &cfg,
        &[Alert::Latency, Alert::Load],
        move || Snapshot {
            latency_ms: Some(*l.lock().unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let until = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !f() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let firing = |h: &crate::health::Health| {
        h.render_metrics()
            .contains("rtdp_alerts_firing{alert=\"latency\"} 1")
    };
    until("latency firing in /status", &|| {
        health.status().details["alerts"][0]["alert"] == "latency"
    });
    until("the gauge at 1", &|| firing(&health));
    let text = health.render_metrics();
    assert!(
        text.contains("rtdp_alerts_firing{alert=\"load\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("rtdp_alert_notifications_total{result=\"sent\"} 0"),
        "no webhook, nothing sent: {text}"
    );
    *latency.lock().unwrap() = 10.0;
    until("resolved", &|| {
        health.alerts().is_empty() && !firing(&health)
    });

    // Disabled: the series exist, nothing is evaluated.
    let off = crate::health::Health::new("off");
    let cfg = AlertsConfig {
        enabled: false,
        ..cfg
    };
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c = calls.clone();
    spawn(rt.handle(), &off, &cfg, &Alert::ALL, move || {
        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Snapshot::default()
    })
    .unwrap();
    assert!(off
        .render_metrics()
        .contains("rtdp_alerts_firing{alert=\"dead_letters\"} 0"));
    // Nothing samples: the closure is not even kept.
    assert_eq!(std::sync::Arc::strong_count(&calls), 1);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(off.status().details["alerts"], serde_json::json!([]));
}
