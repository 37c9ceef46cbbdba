//! A bounded, lock-free, single-producer / single-consumer queue.
//!
//! The control plane between shards (and from API callers into a shard) is built from these:
//! one ring per ordered pair of shards, plus one inbound ring per shard for API callers.
//!
//! Layout: `head` (next slot the consumer reads) and `tail` (next slot the producer writes) are
//! free-running `usize` counters on separate cache lines. Each end keeps a private copy of its own
//! counter and a *cached* copy of the other end's counter, so the shared cache line of the other
//! side is only touched when the cached value says the ring looks full (producer) or empty
//! (consumer). Publication is Release on store, Acquire on load.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Largest capacity a ring may be created with (slots are rounded up to a power of two).
pub const MAX_RING_CAPACITY: usize = 1 << 20;

/// Keeps `T` on its own pair of cache lines (128 bytes covers adjacent-line prefetch on x86).
#[repr(align(128))]
struct CachePadded<T>(T);

struct Shared<T> {
    /// Next index the consumer will read. Written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Next index the producer will write. Written only by the producer.
    tail: CachePadded<AtomicUsize>,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
}

// SAFETY: a slot is accessed by exactly one side at a time: the producer writes slot `i` only while
// `i - head < capacity` (the consumer is done with it, observed through an Acquire load of `head`),
// and the consumer reads it only after observing `tail > i` (Acquire), which the producer published
// with Release after the write. Values of `T` move between threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both ends are gone (this is the last Arc), so no concurrent access: drop what is left.
        let head = *self.head.0.get_mut();
        let tail = *self.tail.0.get_mut();
        for i in head..tail {
            let slot = &mut self.slots[i & self.mask];
            // SAFETY: slots in [head, tail) were written by the producer and not yet read.
            unsafe { slot.get_mut().assume_init_drop() };
        }
    }
}

/// The sending end. Not `Clone`: exactly one producer.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    tail: usize,
    cached_head: usize,
}

/// The receiving end. Not `Clone`: exactly one consumer.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    head: usize,
    cached_tail: usize,
}

/// Creates a ring holding at least `capacity` items (rounded up to a power of two, at least 2).
///
/// Panics if `capacity` is 0 or larger than [`MAX_RING_CAPACITY`] (control-plane misconfiguration).
pub fn channel<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    assert!(capacity > 0, "ring capacity must be > 0");
    assert!(capacity <= MAX_RING_CAPACITY, "ring capacity {capacity} exceeds MAX_RING_CAPACITY {MAX_RING_CAPACITY}");
    let slots_len = capacity.next_power_of_two().max(2);
    let slots = (0..slots_len).map(|_| UnsafeCell::new(MaybeUninit::uninit())).collect::<Vec<_>>().into_boxed_slice();
    let shared = Arc::new(Shared {
        head: CachePadded(AtomicUsize::new(0)),
        tail: CachePadded(AtomicUsize::new(0)),
        slots,
        mask: slots_len - 1,
    });
    (Producer { shared: shared.clone(), tail: 0, cached_head: 0 }, Consumer { shared, head: 0, cached_tail: 0 })
}

impl<T> Producer<T> {
    /// Number of slots (a power of two >= the requested capacity).
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Appends `value`, or gives it back if the ring is full.
    pub fn push(&mut self, value: T) -> Result<(), T> {
        let capacity = self.capacity();
        if self.tail.wrapping_sub(self.cached_head) >= capacity {
            self.cached_head = self.shared.head.0.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.cached_head) >= capacity {
                return Err(value);
            }
        }
        let slot = &self.shared.slots[self.tail & self.shared.mask];
        // SAFETY: the slot is free (tail - head < capacity, head observed with Acquire, so the
        // consumer's read of it happened before) and only this producer writes slots.
        unsafe { (*slot.get()).write(value) };
        self.tail = self.tail.wrapping_add(1);
        self.shared.tail.0.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// True if the ring currently holds no items (a snapshot: the consumer may be popping).
    pub fn is_empty(&self) -> bool {
        self.shared.head.0.load(Ordering::Acquire) == self.tail
    }
}

impl<T> Consumer<T> {
    /// Number of slots (a power of two >= the requested capacity).
    pub fn capacity(&self) -> usize {
        self.shared.mask + 1
    }

    /// Removes the oldest item, if any.
    pub fn pop(&mut self) -> Option<T> {
        if self.head == self.cached_tail {
            self.cached_tail = self.shared.tail.0.load(Ordering::Acquire);
            if self.head == self.cached_tail {
                return None;
            }
        }
        let slot = &self.shared.slots[self.head & self.shared.mask];
        // SAFETY: head < tail (tail observed with Acquire after the producer's Release store that
        // followed the write), and only this consumer reads slots; advancing head below hands the
        // slot back to the producer, so it is read exactly once.
        let value = unsafe { (*slot.get()).assume_init_read() };
        self.head = self.head.wrapping_add(1);
        self.shared.head.0.store(self.head, Ordering::Release);
        Some(value)
    }

    /// True if there is nothing to pop right now (a snapshot: the producer may be pushing).
    pub fn is_empty(&self) -> bool {
        self.head == self.shared.tail.0.load(Ordering::Acquire)
    }

    /// Pops up to `max` items, calling `f` on each in order; returns how many were popped.
    ///
    /// The producer's index is read once per batch; each slot is released as soon as its item
    /// has been moved out, so a panicking `f` cannot cause a double drop.
    pub fn drain(&mut self, max: usize, mut f: impl FnMut(T)) -> usize {
        self.cached_tail = self.shared.tail.0.load(Ordering::Acquire);
        let available = self.cached_tail.wrapping_sub(self.head);
        let n = available.min(max);
        for _ in 0..n {
            let slot = &self.shared.slots[self.head & self.shared.mask];
            // SAFETY: as in `pop`: the slot lies in [head, cached_tail), published by the producer.
            let value = unsafe { (*slot.get()).assume_init_read() };
            self.head = self.head.wrapping_add(1);
            self.shared.head.0.store(self.head, Ordering::Release);
            f(value);
        }
        n
    }
}

// SAFETY: each end is used by one thread at a time (`&mut self` on push/pop); moving an end to
// another thread moves values of `T` across threads, hence `T: Send`.
unsafe impl<T: Send> Send for Producer<T> {}
// SAFETY: as for `Producer`.
unsafe impl<T: Send> Send for Consumer<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn full_and_empty() {
        let (mut tx, mut rx) = channel::<u32>(4);
        assert!(rx.is_empty());
        assert!(tx.is_empty());
        assert_eq!(rx.pop(), None);
        for i in 0..4 {
            tx.push(i).unwrap();
        }
        assert_eq!(tx.push(99), Err(99));
        assert!(!rx.is_empty());
        assert_eq!(rx.pop(), Some(0));
        tx.push(4).unwrap();
        assert_eq!(tx.push(100), Err(100));
        let mut got = Vec::new();
        assert_eq!(rx.drain(2, |v| got.push(v)), 2);
        assert_eq!(rx.drain(10, |v| got.push(v)), 2);
        assert_eq!(got, vec![1, 2, 3, 4]);
        assert!(rx.is_empty());
        assert_eq!(rx.pop(), None);
    }

    #[test]
    fn capacity_rounds_up() {
        let (tx, rx) = channel::<u8>(1000);
        assert_eq!(tx.capacity(), 1024);
        assert_eq!(rx.capacity(), 1024);
        let (tx, _rx) = channel::<u8>(1);
        assert_eq!(tx.capacity(), 2);
    }

    #[test]
    fn leftover_items_are_dropped() {
        let token = Rc::new(());
        struct SendRc(#[allow(dead_code)] Rc<()>);
        // SAFETY: test-only; the Rc never leaves this thread.
        unsafe impl Send for SendRc {}
        {
            let (mut tx, mut rx) = channel::<SendRc>(8);
            for _ in 0..5 {
                assert!(tx.push(SendRc(token.clone())).is_ok());
            }
            drop(rx.pop());
            assert_eq!(Rc::strong_count(&token), 5);
        }
        assert_eq!(Rc::strong_count(&token), 1);
    }

    #[test]
    fn two_thread_stress_keeps_order_and_loses_nothing() {
        const N: u64 = 1_000_000;
        let (mut tx, mut rx) = channel::<u64>(64);
        let producer = std::thread::spawn(move || {
            let mut i = 0;
            while i < N {
                match tx.push(i) {
                    Ok(()) => i += 1,
                    Err(_) => std::thread::yield_now(),
                }
            }
        });
        let mut expected = 0u64;
        while expected < N {
            let n = rx.drain(32, |v| {
                assert_eq!(v, expected);
                expected += 1;
            });
            if n == 0 {
                if let Some(v) = rx.pop() {
                    assert_eq!(v, expected);
                    expected += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        }
        producer.join().unwrap();
        assert!(rx.is_empty());
        assert_eq!(rx.pop(), None);
    }
}
