import BackupCore

/// Hashes a stream in fixed-size blocks (`BlockHashes`), reporting each block's hash as soon as its last byte
/// has passed.
public final class BlockHasher {
    public let blockSize: Int64
    private var current = SHA256()
    private var inBlock: Int64 = 0
    public private(set) var hashes: [String] = []
    /// Called with each block's index and hash, in order.
    private let completed: (Int, String) throws -> Void

    public init(blockSize: Int64, completed: @escaping (Int, String) throws -> Void = { _, _ in }) {
        precondition(blockSize > 0, "block size must be positive")
        self.blockSize = blockSize
        self.completed = completed
    }

    public func update(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes
        while !rest.isEmpty {
            let take = Int(min(Int64(rest.count), blockSize - inBlock))
            current.update(UnsafeRawBufferPointer(rebasing: rest[0..<take]))
            inBlock += Int64(take)
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            if inBlock == blockSize { try close() }
        }
    }

    /// After the last byte: the last, shorter block, if any. Returns every block's hash.
    @discardableResult
    public func finish() throws -> [String] {
        if inBlock > 0 { try close() }
        return hashes
    }

    private func close() throws {
        let hex = current.finalizeHex()
        hashes.append(hex)
        current = SHA256()
        inBlock = 0
        try completed(hashes.count - 1, hex)
    }
}
