import BackupCore
import BackupInterop
import Foundation

/// What may still be written to one file system while extracting an archive that declares no sizes (the runbook
/// script's, with no manifest): its free space and free inodes when the extraction began, less a reserve of 5%
/// of its size (at most 1 GiB; as many inodes). A gzip bomb then stops before the disk the application lives on
/// is full, instead of when it is. Archives with a manifest are bounded by the sizes it records instead.
final class SpaceAllowance {
    let path: String
    let device: UInt64
    private(set) var bytesLeft: Int64
    private(set) var inodesLeft: Int64
    private let reserve: Int64

    private init(path: String, space: FileSystemSpace) {
        self.path = path
        device = space.device
        reserve = min(space.totalBytes / 20, 1 << 30)
        bytesLeft = space.freeBytes - reserve
        inodesLeft = space.freeInodes - space.freeInodes / 20
    }

    /// The allowance of the file system holding `path`; `sharing` when that is the same file system, so that two
    /// destinations on one disk share one allowance.
    static func of(_ path: String, sharing other: SpaceAllowance? = nil) throws -> SpaceAllowance {
        let space = try FileSystemSpace.of(path)
        if let other, other.device == space.device { return other }
        return SpaceAllowance(path: path, space: space)
    }

    func consume(bytes count: Int, for what: String) throws {
        bytesLeft -= Int64(count)
        if bytesLeft < 0 { throw exhausted(what, "\(ByteFormat.string(reserve)) free") }
    }

    func consumeInode(for what: String) throws {
        inodesLeft -= 1
        if inodesLeft < 0 { throw exhausted(what, "5% of its free inodes") }
    }

    private func exhausted(_ what: String, _ reserve: String) -> ContingencyError {
        .failed(
            "extracting \(what) would leave less than \(reserve) on the file system of \(path): the archive has no "
                + "manifest declaring its sizes, so the free space bounds it; stopped there",
            hint: "free space there if the archive is genuine")
    }
}
