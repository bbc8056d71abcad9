import BackupInterop
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// libarchive's own guards in the extraction, on their own: the restore checks every path before it reaches
/// the writer, so only these tests show that the writer still refuses `..` and writes through a symlink.
@Suite("Disk tree writer")
struct DiskTreeWriterTests {
    @Test("an entry whose path has .. is refused and nothing is written above the root")
    func dotDot() throws {
        let folder = try TemporaryDirectory(prefix: "contingency-disk")
        defer { folder.remove() }
        let root = folder.appending("root").path
        try FileManager.default.createDirectory(atPath: root + "/a", withIntermediateDirectories: true)
        let writer = try DiskTreeWriter()
        let entry = ArchiveEntry(file: "\(root)/a/../../escaped.txt", size: 7)
        #expect(throws: (any Error).self) { try writer.writeHeader(entry) }
        #expect(!FileManager.default.fileExists(atPath: folder.appending("escaped.txt").path))
    }

    @Test("a file under a symlink is refused and nothing is written where the link points")
    func throughSymlink() throws {
        let folder = try TemporaryDirectory(prefix: "contingency-disk")
        defer { folder.remove() }
        let root = folder.appending("root").path
        let outside = folder.appending("outside").path
        for path in [root, outside] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        let writer = try DiskTreeWriter()
        try writer.writeHeader(ArchiveEntry(symlink: "\(root)/l", target: outside))
        try writer.finishEntry()
        let entry = ArchiveEntry(file: "\(root)/l/planted.txt", size: 7)
        #expect(throws: (any Error).self) {
            try writer.writeHeader(entry)
            try Array("planted".utf8).withUnsafeBytes { try writer.write($0) }
            try writer.finishEntry()
        }
        try? writer.close()
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
    }

    @Test("owners are set only when asked: otherwise files belong to the writing user")
    func owners() throws {
        let folder = try TemporaryDirectory(prefix: "contingency-disk")
        defer { folder.remove() }
        for (settingOwners, name) in [(false, "mine"), (true, "theirs")] {
            let writer = try DiskTreeWriter(settingOwners: settingOwners)
            let entry = ArchiveEntry(file: folder.appending(name).path, size: 0)
            entry.owner = (4242, 4243)
            try writer.writeHeader(entry)
            try writer.finishEntry()
            try writer.close()
        }
        var mine = stat()
        var theirs = stat()
        #expect(stat(folder.appending("mine").path, &mine) == 0 && mine.st_uid == geteuid())
        if geteuid() == 0 {
            #expect(stat(folder.appending("theirs").path, &theirs) == 0 && theirs.st_uid == 4242 && theirs.st_gid == 4243)
        }
    }
}
