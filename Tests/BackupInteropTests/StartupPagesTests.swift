import Testing

@testable import BackupInterop

@Suite("Start-up pages: which mappings are given back")
struct StartupPagesTests {
    @Test(
        "only readable, never-writable mappings of a file are chosen",
        arguments: [
            ("55d0c0a00000-55d0c1a00000 r-xp 00400000 fd:01 1234  /usr/local/bin/health-sidecar", true),
            ("55d0c1a00000-55d0c1b00000 r--p 01400000 fd:01 1234  /usr/local/bin/health-sidecar", true),
            ("7f00a0000000-7f00a0020000 r--s 00000000 fd:01 99    /usr/lib/locale/C.utf8/LC_CTYPE", true),
            // Relocated data and writable data: their pages may be the process's own (copy on write).
            ("55d0c1b00000-55d0c1c00000 rw-p 01500000 fd:01 1234  /usr/local/bin/health-sidecar", false),
            ("7f00a0000000-7f00a0100000 rw-s 00000000 00:05 7     /dev/shm/segment", false),
            // Anonymous memory, the heap, stacks, the vdso: not a file.
            ("55d0c2000000-55d0c2400000 rw-p 00000000 00:00 0     [heap]", false),
            ("7ffd6a000000-7ffd6a021000 rw-p 00000000 00:00 0     [stack]", false),
            ("7ffd6a1f0000-7ffd6a1f2000 r-xp 00000000 00:00 0     [vdso]", false),
            ("7f00b0000000-7f00b0200000 r--p 00000000 00:00 0", false),
            ("7f00b0000000-7f00b0200000 ---p 00000000 00:00 0", false),
            ("7f00b0000000-7f00b0200000 ---p 00000000 fd:01 5     /usr/lib/x86_64-linux-gnu/libc.so.6", false),
            ("not a mapping", false),
        ])
    func choice(line: String, chosen: Bool) {
        let mapping = StartupPages.FileMapping(Substring(line))
        #expect((mapping?.isReadOnlyFile ?? false) == chosen, "\(line)")
    }

    @Test("a mapping's range and path are read as /proc/self/maps writes them, spaces in the path kept")
    func parsing() throws {
        let mapping = try #require(
            StartupPages.FileMapping("7f00a0000000-7f00a0020000 r-xp 00000000 fd:01 42    /opt/my app/lib.so"))
        #expect(mapping.start == 0x7f00_a000_0000)
        #expect(mapping.length == 0x20000)
        #expect(mapping.path == "/opt/my app/lib.so")
    }

    @Test("this process's own maps yield read-only file mappings, and advising them keeps the process running")
    func ownProcess() {
        // The test binary is mapped from a file: its code at least is chosen. After the advice, code runs on.
        #expect(StartupPages.release() > 0)
        #expect([1, 2, 3].reduce(0, +) == 6)
    }
}
