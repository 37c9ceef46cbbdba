//! A one-shot reply channel for control commands: the shard (through the dispatcher) sends once,
//! the API caller awaits it from any executor or blocks on it. Control plane only.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

struct State<T> {
    value: Option<T>,
    waker: Option<Waker>,
    /// The sender went away without sending.
    dropped: bool,
}

struct Inner<T> {
    state: Mutex<State<T>>,
}

pub struct Sender<T> {
    inner: Option<Arc<Inner<T>>>,
}

pub struct Receiver<T> {
    inner: Arc<Inner<T>>,
}

pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let inner = Arc::new(Inner { state: Mutex::new(State { value: None, waker: None, dropped: false }) });
    (Sender { inner: Some(inner.clone()) }, Receiver { inner })
}

impl<T> Sender<T> {
    pub fn send(mut self, value: T) {
        if let Some(inner) = self.inner.take() {
            let waker = {
                let mut s = inner.state.lock().expect("oneshot lock");
                s.value = Some(value);
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let waker = {
                let mut s = inner.state.lock().expect("oneshot lock");
                s.dropped = true;
                s.waker.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

/// The sender was dropped without a value (the engine stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Canceled;

impl<T> Future for Receiver<T> {
    type Output = Result<T, Canceled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.inner.state.lock().expect("oneshot lock");
        if let Some(v) = s.value.take() {
            return Poll::Ready(Ok(v));
        }
        if s.dropped {
            return Poll::Ready(Err(Canceled));
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::block_on;

    #[test]
    fn value_crosses_threads() {
        let (tx, rx) = channel();
        std::thread::spawn(move || tx.send(7));
        assert_eq!(block_on(rx), Ok(7));
    }

    #[test]
    fn dropped_sender_cancels() {
        let (tx, rx) = channel::<u8>();
        drop(tx);
        assert_eq!(block_on(rx), Err(Canceled));
    }
}
