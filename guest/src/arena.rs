//! The guest's allocator: a bump arena in the memory the instance starts
//! with, so that a usual verdict never grows its linear memory.
//!
//! Every verdict runs in a fresh instance and allocates a few KiB (about 40
//! allocations for the molecule settings and a four-label subject). With
//! the standard allocator the first allocation already grew linear memory,
//! and each growth — and the host's undoing of it when it reuses the
//! instance's slot — is an `mprotect` and a TLB flush, a large part of a
//! fresh verdict's cost (docs/benchmarks.md). Here allocations bump through
//! a static arena and it starts over whenever nothing in it is live (so a
//! reused instance reuses it too); only what does not fit (labels of
//! hundreds of KiB) goes to the standard allocator.
//!
//! What an instance keeps for its whole life (its parsed settings) is
//! allocated inside [`Arena::keep`], from the top of the arena down and
//! outside the count of live blocks: otherwise the arena would never start
//! over again in a reused instance, and every later verdict would fall
//! through to the standard allocator.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, UnsafeCell};
use std::alloc::System;

/// Four times what a usual verdict allocates, and small enough that the
/// instance's whole memory is one 64 KiB page (policy-build/src/lib.rs).
pub const ARENA_BYTES: usize = 16 * 1024;

#[repr(C, align(16))]
struct Bytes(UnsafeCell<[u8; ARENA_BYTES]>);

pub struct Arena {
    bytes: Bytes,
    /// Offset of the first free byte.
    next: Cell<usize>,
    /// Allocations below `next` not yet freed.
    live: Cell<usize>,
    /// Bytes kept at the top: kept blocks fill `ARENA_BYTES - kept..`. (Not
    /// the offset itself: an all-zero arena stays in `.bss`, which the host
    /// resets by zeroing, instead of the whole arena in `.data` it copies back.)
    kept: Cell<usize>,
    /// Inside [`Arena::keep`].
    keeping: Cell<bool>,
}

// SAFETY: a wasm32-unknown-unknown component has one thread; natively the
// arena is only used by the single-threaded tests below.
unsafe impl Sync for Arena {}

impl Arena {
    pub const fn new() -> Arena {
        Arena {
            bytes: Bytes(UnsafeCell::new([0; ARENA_BYTES])),
            next: Cell::new(0),
            live: Cell::new(0),
            kept: Cell::new(0),
            keeping: Cell::new(false),
        }
    }

    /// Runs `f` with every allocation it makes kept for the life of the
    /// instance: freeing such a block is a no-op. For state built once and
    /// never dropped.
    pub fn keep<R>(&self, f: impl FnOnce() -> R) -> R {
        let outer = self.keeping.replace(true);
        let result = f();
        self.keeping.set(outer);
        result
    }

    /// Offset of the lowest kept byte.
    fn top(&self) -> usize {
        ARENA_BYTES - self.kept.get()
    }

    fn is_kept(&self, ptr: *mut u8) -> bool {
        ptr as usize >= self.base() + self.top()
    }

    fn base(&self) -> usize {
        self.bytes.0.get() as usize
    }

    fn contains(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.base() && p < self.base() + ARENA_BYTES
    }

    /// Room for `layout` between the free end and the kept blocks, if there
    /// is any.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let base = self.base();
        if self.keeping.get() {
            let start = (base + self.top()).checked_sub(layout.size())? & !(layout.align() - 1);
            if start < base + self.next.get() {
                return None;
            }
            self.kept.set(base + ARENA_BYTES - start);
            return Some(start as *mut u8);
        }
        let start = (base + self.next.get()).checked_next_multiple_of(layout.align())?;
        let end = start.checked_add(layout.size())?;
        if end > base + self.top() {
            return None;
        }
        self.next.set(end - base);
        self.live.set(self.live.get() + 1);
        Some(start as *mut u8)
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: forwarded with the caller's guarantees.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.contains(ptr) {
            // SAFETY: not ours, so the standard allocator's.
            return unsafe { System.dealloc(ptr, layout) };
        }
        if self.is_kept(ptr) {
            return;
        }
        let live = self.live.get().saturating_sub(1);
        self.live.set(live);
        if live == 0 {
            self.next.set(0);
        } else if ptr as usize + layout.size() == self.base() + self.next.get() {
            // The latest allocation: give its room back.
            self.next.set(ptr as usize - self.base());
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let base = self.base();
        if self.contains(ptr)
            && !self.is_kept(ptr)
            && ptr as usize + layout.size() == base + self.next.get()
            && (ptr as usize)
                .checked_add(new_size)
                .is_some_and(|end| end <= base + self.top())
        {
            // The latest allocation grows or shrinks in place.
            self.next.set(ptr as usize + new_size - base);
            return ptr;
        }
        if !self.contains(ptr) {
            // SAFETY: not ours, so the standard allocator's.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        // SAFETY: a valid layout; the old block is ours and `layout` sized.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("layout")
    }

    #[test]
    fn allocations_are_aligned_disjoint_and_the_arena_restarts_when_all_are_freed() {
        let arena = Box::new(Arena::new());
        unsafe {
            let a = arena.alloc(layout(3, 1));
            let b = arena.alloc(layout(8, 8));
            assert!(arena.contains(a) && arena.contains(b));
            assert_eq!(b as usize % 8, 0);
            assert!(b as usize >= a as usize + 3);
            arena.dealloc(a, layout(3, 1));
            assert_ne!(arena.next.get(), 0, "b is still live");
            arena.dealloc(b, layout(8, 8));
            assert_eq!(arena.next.get(), 0);
            assert_eq!(arena.alloc(layout(3, 1)), a, "the arena did not start over");
        }
    }

    #[test]
    fn kept_blocks_come_from_the_top_are_never_freed_and_do_not_stop_the_arena_starting_over() {
        let arena = Box::new(Arena::new());
        unsafe {
            let a = arena.alloc(layout(5, 1));
            let kept = arena.keep(|| arena.alloc(layout(24, 8)));
            assert!(arena.contains(kept) && arena.is_kept(kept));
            assert_eq!(kept as usize % 8, 0);
            assert!(kept as usize + 24 <= arena.base() + ARENA_BYTES);
            kept.write_bytes(0xAB, 24);
            arena.dealloc(kept, layout(24, 8));
            assert!(arena.is_kept(kept), "freeing a kept block is a no-op");
            arena.dealloc(a, layout(5, 1));
            assert_eq!(arena.next.get(), 0, "the kept block does not count as live");
            // The bottom never grows into the kept block.
            let rest = arena.top();
            let fill = arena.alloc(layout(rest, 1));
            assert_eq!(fill as usize, arena.base());
            assert!(
                !arena.contains(arena.alloc(layout(1, 1))),
                "full: the standard allocator"
            );
            assert_eq!(std::slice::from_raw_parts(kept, 24), &[0xAB; 24]);
        }
    }

    #[test]
    fn what_does_not_fit_goes_to_the_standard_allocator_and_comes_back_there() {
        let arena = Box::new(Arena::new());
        unsafe {
            let big = arena.alloc(layout(ARENA_BYTES + 1, 1));
            assert!(!big.is_null() && !arena.contains(big));
            big.write(7);
            arena.dealloc(big, layout(ARENA_BYTES + 1, 1));
            assert_eq!(arena.live.get(), 0);
        }
    }

    #[test]
    fn realloc_grows_the_latest_block_in_place_and_moves_others_keeping_their_bytes() {
        let arena = Box::new(Arena::new());
        unsafe {
            let a = arena.alloc(layout(4, 1));
            a.copy_from_nonoverlapping(b"abcd".as_ptr(), 4);
            let grown = arena.realloc(a, layout(4, 1), 16);
            assert_eq!(grown, a);
            let b = arena.alloc(layout(4, 1));
            let moved = arena.realloc(a, layout(16, 1), 32);
            assert_ne!(moved, a);
            assert_eq!(std::slice::from_raw_parts(moved, 4), b"abcd");
            let outside = arena.realloc(moved, layout(32, 1), ARENA_BYTES * 2);
            assert!(!arena.contains(outside));
            assert_eq!(std::slice::from_raw_parts(outside, 4), b"abcd");
            arena.dealloc(outside, layout(ARENA_BYTES * 2, 1));
            arena.dealloc(b, layout(4, 1));
            assert_eq!(arena.next.get(), 0);
        }
    }
}
