/// The SHA-256 of each fixed-size block of a member (the last one may be shorter). The block size grows with
/// the member so the list stays under `maximumCount` entries (256 KiB of hex in a manifest for a 1 TB dump,
/// whose blocks are then 256 MiB); a small dump has 1 MiB blocks.
public struct BlockHashes: Codable, Sendable, Equatable {
    public static let minimumBlockSize: Int64 = 1 << 20
    public static let maximumCount = 4096

    public var blockSize: Int64
    /// Lowercase hex, one per block, in order.
    public var sha256: [String]

    public init(blockSize: Int64, sha256: [String]) {
        self.blockSize = blockSize
        self.sha256 = sha256
    }

    enum CodingKeys: String, CodingKey {
        case sha256
        case blockSize = "block_size"
    }

    /// The block size for a member of `size` bytes: a power of two, at least 1 MiB.
    public static func blockSize(for size: Int64) -> Int64 {
        var block = minimumBlockSize
        while block < Int64.max / 2 && size / block + (size % block == 0 ? 0 : 1) > Int64(maximumCount) { block *= 2 }
        return block
    }

    /// Whether the list can describe a member of `size` bytes: a sane block size and one hash per block.
    public func describes(size: Int64) -> Bool {
        guard blockSize >= Self.minimumBlockSize, blockSize <= 1 << 40, size >= 0, sha256.count <= Self.maximumCount else {
            return false
        }
        let count = size == 0 ? 0 : (size - 1) / blockSize + 1
        return Int64(sha256.count) == count && sha256.allSatisfy { $0.utf8.count == 64 }
    }
}
