//! The process's allocator: mimalloc, asked for plain blocks wherever a plain block is
//! aligned enough.
//!
//! The `mimalloc` crate calls `mi_malloc_aligned` for every Rust allocation, and mlua asks
//! for 16-byte alignment for everything Lua allocates. mimalloc serves an aligned request
//! from its fast path only when the next free block happens to be aligned and the size is
//! at least the alignment; otherwise it takes its generic path (about 200 instructions
//! against 20). On the POST loop that was 17 aligned calls per request, 5 of them generic.
//!
//! Why plain blocks are aligned enough: every mimalloc block is at least word (8-byte)
//! aligned, the first block of a page is 16-byte aligned (`MI_PAGE_MIN_START_BLOCK_ALIGN`),
//! and the size classes of multiples of 16 bytes are all multiples of 16. So a request for
//! 8-byte alignment is served by `mi_malloc(size)`, and one for 16 by `mi_malloc` of the size
//! rounded up to 16; anything stricter keeps mimalloc's aligned calls.
//! `tests::plain_blocks_are_aligned_as_asked` checks it over every size up to 64 KiB.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// Alignment every mimalloc block has.
const WORD: usize = std::mem::size_of::<usize>();
/// Alignment a block gets when its size is a multiple of it (`MI_MAX_ALIGN_SIZE`).
const MAX_PLAIN: usize = 16;

pub struct Mimalloc;

/// The size to ask a plain `mi_malloc` for, or None when only an aligned call will do.
#[inline(always)]
fn plain_size(size: usize, align: usize) -> Option<usize> {
    if align <= WORD {
        Some(size)
    } else if align <= MAX_PLAIN {
        // Rounding up cannot overflow: a Layout's size rounded to its alignment fits isize.
        Some((size + MAX_PLAIN - 1) & !(MAX_PLAIN - 1))
    } else {
        None
    }
}

// SAFETY: blocks come from mimalloc and go back to it (`mi_free` takes any of its blocks);
// alignment is as the layout asks (module comment; checked by the tests).
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = match plain_size(layout.size(), layout.align()) {
            Some(size) => unsafe { mi::mi_malloc(size) },
            None => unsafe { mi::mi_malloc_aligned(layout.size(), layout.align()) },
        };
        p as *mut u8
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = match plain_size(layout.size(), layout.align()) {
            Some(size) => unsafe { mi::mi_zalloc(size) },
            None => unsafe { mi::mi_zalloc_aligned(layout.size(), layout.align()) },
        };
        p as *mut u8
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        unsafe { mi::mi_free(ptr as *mut c_void) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // mi_realloc keeps the block when the new size fits it (it was aligned) and otherwise
        // copies into a plain block of the new size: aligned by the same rule.
        let p = match plain_size(new_size, layout.align()) {
            Some(size) => unsafe { mi::mi_realloc(ptr as *mut c_void, size) },
            None => unsafe { mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) },
        };
        p as *mut u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size up to 64 KiB (mimalloc's small and medium classes and the first large
    /// ones), at alignments 1 to 64, with blocks kept alive so that each class hands out
    /// more than its first block.
    #[test]
    fn plain_blocks_are_aligned_as_asked() {
        let a = Mimalloc;
        for align in [1, 2, 4, 8, 16, 32, 64] {
            let mut live = Vec::new();
            let mut size = 1;
            while size <= 64 * 1024 {
                let layout = Layout::from_size_align(size, align).unwrap();
                for zeroed in [false, true] {
                    let p = unsafe {
                        if zeroed {
                            a.alloc_zeroed(layout)
                        } else {
                            a.alloc(layout)
                        }
                    };
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    if zeroed {
                        let bytes = unsafe { std::slice::from_raw_parts(p, size) };
                        assert!(bytes.iter().all(|&b| b == 0), "size {size} zeroed");
                    }
                    // Grown and shrunk in place or moved: still aligned, contents kept.
                    unsafe { p.write(0x5a) };
                    let grown = unsafe { a.realloc(p, layout, size * 3 + 1) };
                    assert_eq!(grown as usize % align, 0, "realloc to {}", size * 3 + 1);
                    assert_eq!(unsafe { grown.read() }, 0x5a);
                    let grown_layout = Layout::from_size_align(size * 3 + 1, align).unwrap();
                    live.push((grown, grown_layout));
                }
                size += if size < 1024 { 1 } else { size / 16 };
            }
            for (p, layout) in live {
                unsafe { a.dealloc(p, layout) };
            }
        }
    }

    #[test]
    fn plain_sizes_round_to_the_alignment_mimalloc_guarantees() {
        assert_eq!(plain_size(1, 1), Some(1));
        assert_eq!(plain_size(24, 8), Some(24));
        assert_eq!(plain_size(24, 16), Some(32));
        assert_eq!(plain_size(0, 16), Some(0));
        assert_eq!(plain_size(33, 16), Some(48));
        assert_eq!(plain_size(64, 32), None);
    }
}
