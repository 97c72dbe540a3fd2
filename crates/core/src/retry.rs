//! Retry with exponential backoff and jitter.
//!
//! Owns the one retry loop every rtdp service uses, so attempts are counted, delayed and
//! logged the same way everywhere. It promises:
//!
//! - [`RetryPolicy::delay`] is pure: exponential growth from `initial` by `multiplier`,
//!   capped at `max`, then spread by `±jitter` (so a delay never exceeds
//!   `max * (1 + jitter)`).
//! - an error that says it is not transient ([`Retryable::is_transient`] = false) is
//!   returned at once: retrying cannot help a definite error (an archived log that is
//!   gone, a schema that does not parse), only a transient one (a dropped connection).
//! - every failed attempt is logged with `what`, the attempt number, the error and the
//!   next delay. Callers must make sure the error's `Display` carries no row data or
//!   secrets.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// How often and how patiently to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total attempts including the first; 0 = retry forever.
    pub max_attempts: u32,
    /// Delay after the first failed attempt.
    pub initial: Duration,
    /// Upper bound of the delay before jitter.
    pub max: Duration,
    /// Growth factor per attempt (values below 1, and NaN, count as 1).
    pub multiplier: f64,
    /// Fraction 0..=1: each delay is scaled by a random factor in `1 ± jitter`.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// A policy that retries forever with the default backoff.
    pub fn forever() -> Self {
        Self {
            max_attempts: 0,
            ..Self::default()
        }
    }

    /// The delay to wait after failed attempt number `attempt` (1-based; 0 counts as 1).
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let base = self.base_delay(attempt);
        let jitter = clamp_unit(self.jitter);
        if jitter == 0.0 || base.is_zero() {
            return base;
        }
        let factor = 1.0 + rng.random_range(-jitter..=jitter);
        Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
    }

    /// The delay without jitter: `min(initial * multiplier^(attempt-1), max)`.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let multiplier = if self.multiplier.is_finite() && self.multiplier >= 1.0 {
            self.multiplier
        } else {
            1.0
        };
        let exponent = i32::try_from(attempt.max(1) - 1).unwrap_or(i32::MAX);
        let secs = self.initial.as_secs_f64() * multiplier.powi(exponent);
        match Duration::try_from_secs_f64(secs) {
            Ok(d) => d.min(self.max),
            Err(_) => self.max, // overflow or infinity: the cap applies
        }
    }

    /// Whether attempt number `attempt` (1-based) may be followed by another one.
    fn allows_another(&self, attempt: u32) -> bool {
        self.max_attempts == 0 || attempt < self.max_attempts
    }
}

fn clamp_unit(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// Whether retrying an operation that failed with this error can help.
pub trait Retryable {
    /// True for transient errors (timeouts, dropped connections, broker unavailable),
    /// false for definite ones (bad credentials, missing data, invalid input).
    fn is_transient(&self) -> bool;
}

impl Retryable for std::io::Error {
    fn is_transient(&self) -> bool {
        use std::io::ErrorKind::*;
        matches!(
            self.kind(),
            Interrupted
                | WouldBlock
                | TimedOut
                | ConnectionReset
                | ConnectionAborted
                | ConnectionRefused
                | NotConnected
                | BrokenPipe
                | AddrInUse
                | UnexpectedEof
        )
    }
}

enum Next {
    Stop,
    Wait(Duration),
}

fn after_failure<E: Retryable + Display>(
    policy: &RetryPolicy,
    what: &str,
    attempt: u32,
    err: &E,
) -> Next {
    if !err.is_transient() {
        tracing::warn!(what, attempt, error = %err, "failed with a definite error; not retrying");
        return Next::Stop;
    }
    if !policy.allows_another(attempt) {
        tracing::error!(what, attempt, error = %err, "failed; giving up after {attempt} attempts");
        return Next::Stop;
    }
    let delay = policy.delay(attempt, &mut rand::rng());
    tracing::warn!(
        what,
        attempt,
        error = %err,
        next_delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "failed; retrying"
    );
    Next::Wait(delay)
}

/// Runs `f` until it succeeds, fails with a non-transient error, or the policy's attempts
/// are used up; returns the last error in the latter two cases.
pub async fn retry_async<T, E, F, Fut>(policy: &RetryPolicy, what: &str, mut f: F) -> Result<T, E>
where
    E: Retryable + Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt: u32 = 1;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(err) => match after_failure(policy, what, attempt, &err) {
                Next::Stop => return Err(err),
                Next::Wait(delay) => tokio::time::sleep(delay).await,
            },
        }
        attempt = attempt.saturating_add(1);
    }
}

/// The blocking twin of [`retry_async`]: sleeps the current thread between attempts.
pub fn retry_blocking<T, E, F>(policy: &RetryPolicy, what: &str, mut f: F) -> Result<T, E>
where
    E: Retryable + Display,
    F: FnMut() -> Result<T, E>,
{
    let mut attempt: u32 = 1;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(err) => match after_failure(policy, what, attempt, &err) {
                Next::Stop => return Err(err),
                Next::Wait(delay) => std::thread::sleep(delay),
            },
        }
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::cell::Cell;

    #[derive(Debug)]
    struct TestErr {
        transient: bool,
    }
    impl Display for TestErr {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "test error (transient={})", self.transient)
        }
    }
    impl Retryable for TestErr {
        fn is_transient(&self) -> bool {
            self.transient
        }
    }

    fn fast(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
            multiplier: 2.0,
            jitter: 0.0,
        }
    }

    #[test]
    fn default_policy() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts, 5);
        assert_eq!(p.base_delay(1), Duration::from_millis(200));
        assert_eq!(p.base_delay(2), Duration::from_millis(400));
        assert_eq!(p.base_delay(0), Duration::from_millis(200));
        assert_eq!(p.base_delay(30), Duration::from_secs(30));
        assert_eq!(p.base_delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn blocking_retries_transient_until_success() {
        let calls = Cell::new(0);
        let r: Result<u32, TestErr> = retry_blocking(&fast(5), "op", || {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(TestErr { transient: true })
            } else {
                Ok(7)
            }
        });
        assert_eq!(r.ok(), Some(7));
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn blocking_stops_at_once_on_definite_error() {
        let calls = Cell::new(0);
        let r: Result<(), TestErr> = retry_blocking(&fast(5), "op", || {
            calls.set(calls.get() + 1);
            Err(TestErr { transient: false })
        });
        assert!(r.is_err());
        assert_eq!(calls.get(), 1);
    }

    #[test]
    fn blocking_gives_up_after_max_attempts() {
        let calls = Cell::new(0);
        let r: Result<(), TestErr> = retry_blocking(&fast(4), "op", || {
            calls.set(calls.get() + 1);
            Err(TestErr { transient: true })
        });
        assert!(r.is_err());
        assert_eq!(calls.get(), 4);
    }

    #[tokio::test]
    async fn async_retries_and_stops() {
        let mut calls = 0;
        let r: Result<&str, TestErr> = retry_async(&fast(3), "op", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 2 {
                    Err(TestErr { transient: true })
                } else {
                    Ok("done")
                }
            }
        })
        .await;
        assert_eq!(r.ok(), Some("done"));
        assert_eq!(calls, 2);

        let mut calls = 0;
        let r: Result<(), TestErr> = retry_async(&fast(0), "op", || {
            calls += 1;
            let n = calls;
            async move { Err(TestErr { transient: n < 10 }) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 10, "forever policy stops only on the definite error");
    }

    #[test]
    fn io_errors_have_a_kind() {
        use std::io::{Error, ErrorKind};
        assert!(Error::from(ErrorKind::ConnectionReset).is_transient());
        assert!(Error::from(ErrorKind::TimedOut).is_transient());
        assert!(!Error::from(ErrorKind::NotFound).is_transient());
        assert!(!Error::from(ErrorKind::PermissionDenied).is_transient());
    }

    #[test]
    fn odd_parameters_do_not_panic() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = RetryPolicy {
            max_attempts: 1,
            initial: Duration::MAX,
            max: Duration::MAX,
            multiplier: f64::NAN,
            jitter: 7.0,
        };
        let _ = p.delay(u32::MAX, &mut rng);
        let p = RetryPolicy {
            multiplier: 0.5,
            jitter: f64::NAN,
            ..RetryPolicy::default()
        };
        assert_eq!(p.delay(3, &mut rng), Duration::from_millis(200));
    }

    fn policy_strategy() -> impl Strategy<Value = RetryPolicy> {
        (1u64..5_000, 1u64..120_000, 1.0f64..10.0, 0.0f64..=1.0).prop_map(
            |(initial, max, multiplier, jitter)| RetryPolicy {
                max_attempts: 5,
                initial: Duration::from_millis(initial),
                max: Duration::from_millis(max),
                multiplier,
                jitter,
            },
        )
    }

    proptest! {
        #[test]
        fn delay_never_exceeds_cap_with_jitter(p in policy_strategy(), attempt in 0u32..200, seed in any::<u64>()) {
            let mut rng = StdRng::seed_from_u64(seed);
            let d = p.delay(attempt, &mut rng);
            let bound = p.max.as_secs_f64() * (1.0 + p.jitter) + 1e-9;
            prop_assert!(d.as_secs_f64() <= bound, "{d:?} > {bound}");
        }

        #[test]
        fn delay_grows_monotonically_without_jitter(p in policy_strategy(), attempt in 1u32..200, seed in any::<u64>()) {
            let p = RetryPolicy { jitter: 0.0, ..p };
            let mut rng = StdRng::seed_from_u64(seed);
            let a = p.delay(attempt, &mut rng);
            let b = p.delay(attempt + 1, &mut rng);
            prop_assert!(a <= b, "{a:?} > {b:?}");
            prop_assert!(b <= p.max);
        }
    }
}
