//! One store load per cache entry at a time.
//!
//! When a cached entry expires (or was never loaded) while many requests need it, each request
//! would otherwise read the store on its own: with 64 connections on one key, 64 reads of the
//! same rows, each on its own blocking thread. A [`Flights`] lets the first request load and
//! the others wait for its answer (its error too: when the store fails, they fail together
//! instead of queueing behind one another).
//!
//! A request joins a load only when the answer would have been valid as a cache hit: the load
//! began less than the cache's TTL ago and nothing was invalidated since it began (the rules of
//! [`crate::invalidation`]). Otherwise it starts a load of its own.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::invalidation::{Generation, LoadTicket};

/// More in-flight entries than this prunes the finished ones.
const PRUNE_AT: usize = 1024;

struct Flight<V> {
    ticket: LoadTicket,
    answer: OnceCell<V>,
}

/// The loads in progress, by cache key.
pub(crate) struct Flights<K, V> {
    running: Mutex<HashMap<K, Weak<Flight<V>>>>,
}

impl<K, V> Default for Flights<K, V> {
    fn default() -> Self {
        Flights {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    /// The answer of the load of `key` in progress, if it may be joined, or else of `load`,
    /// which is given the ticket its answer must be cached under.
    ///
    /// If the request running `load` is cancelled, a waiting one runs its own `load` in its
    /// place (`OnceCell` semantics), so no request waits on a load nobody runs.
    pub(crate) async fn load<F, Fut>(
        &self,
        key: &K,
        generation: &Generation,
        ttl: Duration,
        load: F,
    ) -> V
    where
        F: FnOnce(LoadTicket) -> Fut,
        Fut: Future<Output = V>,
    {
        let flight = self.join_or_start(key, generation, ttl);
        let ticket = flight.ticket;
        let answer = flight.answer.get_or_init(|| load(ticket)).await.clone();
        self.finish(key, &flight);
        answer
    }

    fn join_or_start(&self, key: &K, generation: &Generation, ttl: Duration) -> Arc<Flight<V>> {
        let fresh = || {
            Arc::new(Flight {
                ticket: generation.ticket(),
                answer: OnceCell::new(),
            })
        };
        let Ok(mut running) = self.running.lock() else {
            // A poisoned table only costs the sharing.
            return fresh();
        };
        if let Some(flight) = running.get(key).and_then(Weak::upgrade)
            && flight.ticket.started.elapsed() < ttl
            && generation.is_current(&flight.ticket)
        {
            return flight;
        }
        if running.len() >= PRUNE_AT {
            running.retain(|_, f| f.strong_count() > 0);
        }
        let flight = fresh();
        running.insert(key.clone(), Arc::downgrade(&flight));
        flight
    }

    /// Forgets `flight` once answered (later requests read the cache, or load afresh).
    fn finish(&self, key: &K, flight: &Arc<Flight<V>>) {
        if let Ok(mut running) = self.running.lock()
            && running
                .get(key)
                .is_some_and(|f| std::ptr::eq(f.as_ptr(), Arc::as_ptr(flight)))
        {
            running.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.running.lock().map(|r| r.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const TTL: Duration = Duration::from_secs(60);
    /// Bounds a wait that must not block (a wrong join would wait forever).
    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_one_load() {
        let flights: Arc<Flights<u32, Result<u32, String>>> = Arc::default();
        let generation = Arc::new(Generation::default());
        let loads = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (flights, generation, loads, gate) = (
                flights.clone(),
                generation.clone(),
                loads.clone(),
                gate.clone(),
            );
            tasks.push(tokio::spawn(async move {
                flights
                    .load(&7, &generation, TTL, |_| async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        gate.notified().await;
                        Ok(42)
                    })
                    .await
            }));
        }
        // Let every task reach the flight before the load answers.
        while flights
            .running
            .lock()
            .unwrap()
            .get(&7)
            .map_or(0, Weak::strong_count)
            < 32
        {
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(42));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(flights.len(), 0, "finished flights are forgotten");
    }

    #[tokio::test]
    async fn an_error_is_shared_too() {
        let flights: Flights<u32, Result<u32, String>> = Flights::default();
        let generation = Generation::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut first = Box::pin(flights.load(&1, &generation, TTL, |_| async move {
            let _ = rx.await;
            Err("store unavailable".to_owned())
        }));
        assert!(futures_poll_once(first.as_mut()).await.is_none());
        let mut second = Box::pin(flights.load(&1, &generation, TTL, |_| async {
            panic!("the second request must join the first load")
        }));
        assert!(futures_poll_once(second.as_mut()).await.is_none());
        let _ = tx.send(());
        let (a, b) = tokio::join!(first, second);
        assert_eq!(a, Err("store unavailable".to_owned()));
        assert_eq!(b, a);
    }

    #[tokio::test]
    async fn a_load_that_began_before_an_invalidation_is_not_joined() {
        let flights: Flights<u32, u32> = Flights::default();
        let generation = Generation::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let loads = AtomicUsize::new(0);
        let first = flights.load(&1, &generation, TTL, |_| async {
            loads.fetch_add(1, Ordering::SeqCst);
            let _ = rx.await;
            1
        });
        tokio::pin!(first);
        // Start the first load, then invalidate while it runs.
        assert!(futures_poll_once(first.as_mut()).await.is_none());
        generation.bump();
        let second = tokio::time::timeout(
            WAIT,
            flights.load(&1, &generation, TTL, |ticket| {
                assert!(generation.is_current(&ticket));
                async { 2 }
            }),
        )
        .await
        .expect("the second request must not wait on the first load");
        assert_eq!(second, 2, "a request after the invalidation reads afresh");
        let _ = tx.send(());
        assert_eq!(first.await, 1);
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_load_older_than_the_ttl_is_not_joined() {
        let flights: Flights<u32, u32> = Flights::default();
        let generation = Generation::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let first = flights.load(&1, &generation, Duration::ZERO, |_| async {
            let _ = rx.await;
            1
        });
        tokio::pin!(first);
        assert!(futures_poll_once(first.as_mut()).await.is_none());
        let second = tokio::time::timeout(
            WAIT,
            flights.load(&1, &generation, Duration::ZERO, |_| async { 2 }),
        )
        .await
        .expect("the second request must not wait on the first load");
        assert_eq!(second, 2);
        let _ = tx.send(());
        assert_eq!(first.await, 1);
    }

    #[tokio::test]
    async fn a_cancelled_loader_is_replaced_by_a_waiter() {
        let flights: Flights<u32, u32> = Flights::default();
        let generation = Generation::default();
        let mut first =
            Box::pin(flights.load(&1, &generation, TTL, |_| std::future::pending::<u32>()));
        assert!(futures_poll_once(first.as_mut()).await.is_none());
        let second = flights.load(&1, &generation, TTL, |_| async { 2 });
        tokio::pin!(second);
        // The second joins the first's flight and waits on it...
        assert!(futures_poll_once(second.as_mut()).await.is_none());
        // ...until the first request goes away; then it loads itself.
        drop(first);
        assert_eq!(tokio::time::timeout(WAIT, second).await, Ok(2));
        assert_eq!(flights.len(), 0);
    }

    /// Polls a future once: `Some` if it finished.
    async fn futures_poll_once<F: Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
