//! The health board over a fake store whose answers the test sets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::storage::local::LocalRegion;
use crate::storage::store_tests::{Call, Hook, Hooked};

/// What the fake region answers to `get_parameter`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answer {
    Value,
    Missing,
    Denied,
    Down,
    Hung,
}

/// A local region holding the parameter `p` = `value`, behind a fake that answers
/// as the test sets.
type FakeRegion = Hooked<LocalRegion, Fake>;

#[derive(Debug)]
struct Fake {
    answer: Mutex<Answer>,
    calls: AtomicUsize,
    /// The local region's store, removed with it.
    _dir: tempfile::TempDir,
}

#[async_trait]
impl Hook for Fake {
    async fn before(&self, call: Call<'_>) -> Result<(), StorageError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = *self.answer.lock().unwrap();
        match answer {
            Answer::Value => Ok(()),
            Answer::Missing => Err(StorageError::not_found(call.name)),
            Answer::Denied => Err(StorageError::access_denied(call.name)),
            Answer::Down => Err(StorageError::unavailable("connection refused")),
            Answer::Hung => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(StorageError::timeout(call.name))
            }
        }
    }
}

async fn fake_region(region: &str, answer: Answer) -> Arc<FakeRegion> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(region)).unwrap();
    let local = LocalRegion::new(dir.path(), region);
    local.put_parameter("p", "value").await.unwrap();
    let fake = Fake {
        answer: Mutex::new(answer),
        calls: AtomicUsize::new(0),
        _dir: dir,
    };
    Arc::new(Hooked::new(local, fake))
}

impl FakeRegion {
    fn set(&self, answer: Answer) {
        *self.hook.answer.lock().unwrap() = answer;
    }

    fn calls(&self) -> usize {
        self.hook.calls.load(Ordering::SeqCst)
    }
}

fn policy(first_backoff: Duration) -> BreakerPolicy {
    BreakerPolicy {
        failures_to_open: 3,
        first_backoff,
        max_backoff: Duration::from_secs(60),
    }
}

/// A board over three fake regions answering as given.
async fn three_regions(
    answers: [Answer; 3],
    backoff: Duration,
) -> (HealthBoard, Vec<Arc<FakeRegion>>, Vec<Arc<dyn RegionStore>>) {
    let board = HealthBoard::new(policy(backoff));
    let mut fakes = Vec::new();
    for (name, answer) in ["r1", "r2", "r3"].iter().zip(answers) {
        fakes.push(fake_region(name, answer).await);
    }
    let guarded = fakes
        .iter()
        .map(|fake| board.guard(fake.clone() as Arc<dyn RegionStore>))
        .collect();
    (board, fakes, guarded)
}

fn health_of(board: &HealthBoard, region: &str) -> RegionHealth {
    board
        .report()
        .into_iter()
        .find(|h| h.region == region)
        .expect("the region is on the board")
}

#[tokio::test]
async fn a_region_that_keeps_failing_is_refused_at_once_without_being_asked() {
    let (board, fakes, stores) = three_regions(
        [Answer::Down, Answer::Value, Answer::Value],
        Duration::from_secs(60),
    )
    .await;
    for _ in 0..3 {
        assert!(stores[0].get_parameter("p").await.is_err());
    }
    assert_eq!(fakes[0].calls(), 3);
    let refused = stores[0].get_parameter("p").await.unwrap_err();
    assert!(refused.kind() == ErrorKind::Unavailable, "{refused}");
    assert!(
        refused.to_string().contains("connection refused"),
        "{refused}"
    );
    assert_eq!(
        fakes[0].calls(),
        3,
        "an open breaker does not ask the region"
    );
    let health = health_of(&board, "r1");
    assert_eq!(health.breaker, "open");
    assert_eq!(health.consecutive_failures, 3);
    assert!(health.retry_in_seconds.is_some_and(|s| s > 0.0));
    assert!(health
        .last_error
        .unwrap()
        .reason
        .contains("connection refused"));
    assert_eq!(health.last_success, None);
}

#[tokio::test]
async fn not_found_and_access_denied_are_answers_and_never_open_the_breaker() {
    let (board, fakes, stores) = three_regions(
        [Answer::Missing, Answer::Denied, Answer::Value],
        Duration::from_secs(60),
    )
    .await;
    for _ in 0..10 {
        assert!(stores[0]
            .get_parameter("p")
            .await
            .unwrap_err()
            .is_not_found());
        assert!(stores[1]
            .get_parameter("p")
            .await
            .unwrap_err()
            .is_access_denied());
    }
    assert_eq!(fakes[0].calls(), 10);
    assert_eq!(fakes[1].calls(), 10);
    for region in ["r1", "r2"] {
        let health = health_of(&board, region);
        assert_eq!(health.breaker, "closed");
        assert!(health.last_success.is_some());
        assert_eq!(health.last_error, None);
    }
}

#[tokio::test]
async fn open_regions_are_still_tried_when_the_others_cannot_make_a_majority() {
    let (board, fakes, stores) = three_regions(
        [Answer::Down, Answer::Down, Answer::Value],
        Duration::from_secs(60),
    )
    .await;
    for _ in 0..3 {
        let _ = stores[0].get_parameter("p").await;
        let _ = stores[1].get_parameter("p").await;
    }
    assert_eq!(health_of(&board, "r1").breaker, "open");
    assert_eq!(health_of(&board, "r2").breaker, "open");
    // Only r3 is usable: one of three is no majority, so both open regions are asked.
    let _ = stores[1].get_parameter("p").await;
    assert_eq!(fakes[1].calls(), 4);
    fakes[0].set(Answer::Value);
    assert_eq!(stores[0].get_parameter("p").await.unwrap(), "value");
    assert_eq!(fakes[0].calls(), 4);
    assert_eq!(health_of(&board, "r1").breaker, "closed");
    // Now r1 and r3 make a majority without r2: r2 is refused at once.
    assert!(stores[1].get_parameter("p").await.is_err());
    assert_eq!(fakes[1].calls(), 4);
}

#[tokio::test]
async fn after_the_backoff_one_probe_goes_through_and_its_success_closes_the_breaker() {
    let (board, fakes, stores) = three_regions(
        [Answer::Down, Answer::Value, Answer::Value],
        Duration::from_millis(50),
    )
    .await;
    for _ in 0..3 {
        let _ = stores[0].get_parameter("p").await;
    }
    assert!(stores[0].get_parameter("p").await.is_err());
    assert_eq!(fakes[0].calls(), 3);
    tokio::time::sleep(Duration::from_millis(80)).await;
    fakes[0].set(Answer::Value);
    assert_eq!(stores[0].get_parameter("p").await.unwrap(), "value");
    assert_eq!(fakes[0].calls(), 4);
    let health = health_of(&board, "r1");
    assert_eq!(health.breaker, "closed");
    assert_eq!(health.consecutive_failures, 0);
    assert!(health.last_success.is_some());
    assert!(
        health.last_error.is_some(),
        "the last error stays on record"
    );
}

#[tokio::test]
async fn a_failed_probe_opens_the_breaker_for_twice_as_long() {
    let (board, fakes, stores) = three_regions(
        [Answer::Down, Answer::Value, Answer::Value],
        Duration::from_millis(50),
    )
    .await;
    for _ in 0..3 {
        let _ = stores[0].get_parameter("p").await;
    }
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(stores[0].get_parameter("p").await.is_err());
    assert_eq!(fakes[0].calls(), 4, "the probe asked the region");
    let retry_in = health_of(&board, "r1").retry_in_seconds.unwrap();
    assert!(retry_in > 0.06 && retry_in <= 0.1, "{retry_in}");
}

#[tokio::test]
async fn a_cancelled_probe_lets_the_next_request_probe() {
    let (board, fakes, stores) = three_regions(
        [Answer::Down, Answer::Value, Answer::Value],
        Duration::from_millis(20),
    )
    .await;
    for _ in 0..3 {
        let _ = stores[0].get_parameter("p").await;
    }
    tokio::time::sleep(Duration::from_millis(40)).await;
    fakes[0].set(Answer::Hung);
    let probe = tokio::time::timeout(Duration::from_millis(50), stores[0].get_parameter("p"));
    assert!(probe.await.is_err(), "the hung probe is cancelled");
    assert_eq!(health_of(&board, "r1").breaker, "open");
    fakes[0].set(Answer::Value);
    assert_eq!(stores[0].get_parameter("p").await.unwrap(), "value");
    assert_eq!(health_of(&board, "r1").breaker, "closed");
}

/// A writer the test reads back: what a scoped subscriber logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn each_failed_request_is_one_line_with_the_region_and_the_reason() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _scoped = tracing::subscriber::set_default(subscriber);
    let (_board, _fakes, stores) = three_regions(
        [Answer::Down, Answer::Denied, Answer::Missing],
        Duration::from_secs(60),
    )
    .await;
    for store in &stores {
        assert!(store.get_parameter("p").await.is_err());
    }
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains("request failed: unavailable: connection refused")
            && lines[0].contains("region=\"r1\""),
        "{log}"
    );
    assert!(
        lines[1].contains("request failed: access denied: p") && lines[1].contains("region=\"r2\""),
        "{log}"
    );
}
