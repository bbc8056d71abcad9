import CMalloc

/// How the process's allocator behaves, set once at start by every executable.
public enum MemoryTuning {
    /// Large buffers (upload parts, archive blocks) are mapped and unmapped on their own. glibc would otherwise
    /// raise its mmap threshold after the first large free and keep freed buffers in its heaps, so that the
    /// resident memory of a long upload counts every part buffer it ever had rather than the two in use.
    public static func returnLargeBuffersToSystem() {
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 20)
    }
}
